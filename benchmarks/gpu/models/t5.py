# T5 (t5-small's default config) as a sequence-to-sequence model with labels.
import transformers

model = transformers.T5ForConditionalGeneration(transformers.T5Config())
