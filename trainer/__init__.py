"""Colorizer's trainer: dataset builder, GAN models, training loop, export and evaluation."""
