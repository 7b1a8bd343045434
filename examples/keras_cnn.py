"""A Keras CNN for MNIST, as in Keras's examples: vramlint reads it without TensorFlow or Keras.

    vramlint check examples/keras_cnn.py
    vramlint report examples/keras_cnn.py --model model
"""

import keras
from keras import layers

num_classes = 10
input_shape = (28, 28, 1)

model = keras.Sequential(
    [
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]
)

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

if __name__ == "__main__":
    (x_train, y_train), _ = keras.datasets.mnist.load_data()
    model.fit(x_train[..., None] / 255.0, keras.utils.to_categorical(y_train, num_classes),
              batch_size=128, epochs=15, validation_split=0.1)
