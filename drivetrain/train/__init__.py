"""drivetrain.train: the training loop built from the parts, checkpoints, logging, presets."""
