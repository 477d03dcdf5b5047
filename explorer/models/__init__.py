"""From a spec to a trained, optimized Keras model and its TFLite conversion (the only TensorFlow users)."""
