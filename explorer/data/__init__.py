"""Where images come from: built-in datasets and validated uploads, split and ready to train on."""
