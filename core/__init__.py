"""What the trainer and the service share: the model contract, its metadata, image processing and inference."""
