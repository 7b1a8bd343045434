"""PyTorch Lightning and Lightning Fabric, modelled: LightningModule, datamodules, one step of Trainer.fit."""
