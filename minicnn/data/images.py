"""uint8 images as float32 network inputs: scaled to [0, 1], or standardised with a data set's mean and std."""
import numpy as np


def to_float32(images):
    """uint8 images -> float32 in [0, 1] with a channel axis.

    Shape: images (N, H, W) -> out (N, 1, H, W)
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
    out = images[:, None, :, :].astype(np.float32)
    out /= np.float32(255)  # exact at 0 and 255
    return out


def standardize(images, mean, std):
    """uint8 images -> float32 standardised: (pixel / 255 - mean) / std.

    Shape: images (N, H, W) -> out (N, 1, H, W)
    """
    out = to_float32(images)
    out -= np.float32(mean)
    out *= np.float32(1 / std)
    return out


def float_arrays(arrays, mean, std, standardize_images=True):
    """(x_train, y_train, x_test, y_test) uint8 -> images float32 (N, 1, H, W), labels int64 (N,)."""
    x_train, y_train, x_test, y_test = arrays
    scale = (lambda x: standardize(x, mean, std)) if standardize_images else to_float32
    return scale(x_train), y_train.astype(np.int64), scale(x_test), y_test.astype(np.int64)
