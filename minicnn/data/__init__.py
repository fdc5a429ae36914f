"""Data: MNIST and Fashion-MNIST verified by SHA-256 and the strict IDX reader, seeded synthetic edge images, augmentation.

May import: ``minicnn.utils`` only (never the layers, training or edges code).
"""
