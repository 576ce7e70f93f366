"""Datasets: the on-disk loaders (SYSU-MM01, RegDB, LLCM), the synthetic generator and the
training image cache. Everything downstream works on lists of :class:`ImageRecord`."""
from vibench.data.records import MODALITIES, DatasetIndex, ImageRecord, records_sha256

__all__ = ["DatasetIndex", "ImageRecord", "MODALITIES", "records_sha256"]
