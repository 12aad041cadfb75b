"""The dataset: raw category folders of photos in, the seed's train/test x/y folders out."""

from colorizer_trainer.dataset.build import BuildOptions, BuildReport, DatasetError, build_dataset, dataset_fingerprint

__all__ = ["BuildOptions", "BuildReport", "DatasetError", "build_dataset", "dataset_fingerprint"]
