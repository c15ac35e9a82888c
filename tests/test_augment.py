import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from unet_tf.config import AugmentConfig
from unet_tf.data.augment import augment_pair, resample, warp_coordinates

GEOMETRY = AugmentConfig(
    flip=True, vertical_flip=True, rotate90=True, scale=(1.0, 1.4), brightness=0.0,
    contrast=0.0, rotate=30.0, elastic=10.0,
)


def scene(size=64):
    """A mask with three classes and an ignored band, and an image that encodes it one-hot."""
    mask = np.zeros((size, size, 1), np.int32)
    mask[8:30, 10:44] = 1
    mask[36:58, 20:54] = 2
    mask[:4] = 255
    image = np.stack([mask[..., 0] == k for k in (0, 1, 2)], -1).astype(np.float32)
    return image, mask


@pytest.fixture(scope="module")
def augment():
    return tf.function(lambda image, mask, seed, cfg=GEOMETRY: augment_pair(image, mask, seed, cfg))


def test_image_and_mask_stay_aligned(augment):
    image, mask = scene()
    changed = 0
    for seed in range(4):
        out_image, out_mask = augment(image, mask, tf.constant([seed, 7]))
        out_mask = out_mask.numpy()[..., 0]
        assert set(np.unique(out_mask)) <= {0, 1, 2, 255}  # nearest: labels never blend
        labelled = out_mask != 255
        # the image was the mask one-hot: its argmax after bilinear resampling must agree
        agree = np.argmax(out_image.numpy(), -1) == out_mask
        assert agree[labelled].mean() > 0.97, seed
        changed += not np.array_equal(out_mask, mask[..., 0])
    assert changed >= 3  # the transforms really moved things


def test_same_seed_same_result_and_shapes(augment):
    image, mask = scene()
    a = augment(image, mask, tf.constant([3, 4]))
    b = augment(image, mask, tf.constant([3, 4]))
    c = augment(image, mask, tf.constant([5, 4]))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert a[0].shape == (64, 64, 3) and a[1].shape == (64, 64, 1) and a[1].dtype == tf.int32


def test_elastic_field_is_smooth_with_the_requested_size():
    coords = warp_coordinates(256, 256, tf.constant([1, 2]), elastic_sigma=10.0).numpy()
    rows, cols = np.meshgrid(np.arange(256.0), np.arange(256.0), indexing="ij")
    dy, dx = coords[0] - rows, coords[1] - cols
    assert 2.0 < np.sqrt(np.mean(dy**2 + dx**2)) < 30.0  # displacements of order sigma
    # neighbours move together (no folds) at the paper's scale
    assert np.abs(np.diff(dy, axis=0)).max() < 0.6


def test_rotation_only_keeps_the_centre_and_identity_when_off():
    coords = warp_coordinates(33, 33, tf.constant([0, 1]), max_degrees=45.0).numpy()
    np.testing.assert_allclose(coords[:, 16, 16], [16.0, 16.0], atol=1e-4)
    ident = warp_coordinates(8, 8, tf.constant([0, 1])).numpy()
    np.testing.assert_array_equal(ident[1], np.tile(np.arange(8.0), (8, 1)))
    with pytest.raises(ValueError, match="elastic_grid"):
        warp_coordinates(8, 8, tf.constant([0, 1]), elastic_sigma=1.0, grid=1)


def test_colour_changes_touch_the_image_only():
    image, mask = scene(32)
    rgb = np.repeat(image[..., :1], 3, -1) * 0.5 + 0.25
    cfg = dataclasses.replace(AugmentConfig.none(), brightness=0.2, saturation=0.5, hue=0.1)
    out_image, out_mask = augment_pair(rgb, mask, tf.constant([1, 1]), cfg)
    np.testing.assert_array_equal(out_mask.numpy(), mask)
    assert not np.allclose(out_image.numpy(), rgb)


def test_warping_only_the_crop_gives_the_pixels_of_warping_then_cropping():
    rng = np.random.default_rng(0)
    image = rng.random((64, 48, 1)).astype("float32")
    mask = rng.integers(0, 2, (64, 48, 1)).astype("int32")
    cfg = AugmentConfig(flip=False, scale=(1.0, 1.0), brightness=0.0, contrast=0.0,
                        elastic=10.0, rotate=15.0, crop=(32, 16))
    for s in range(3):
        seed = tf.constant([s, 7])
        out_image, out_mask = augment_pair(image, mask, seed, cfg)
        # what augment_pair did before: warp the whole image, then crop with the same seed
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=8)
        extra = tf.random.experimental.stateless_split(seeds[7], num=4)
        coords = warp_coordinates(64, 48, extra[0], 15.0, 10.0, 3)
        stacked = tf.concat([resample(image, coords, 1),
                             resample(tf.cast(mask, tf.float32), coords, 0)], -1)
        stacked = tf.image.stateless_random_crop(stacked, [32, 16, 2], extra[3])
        np.testing.assert_array_equal(out_image, tf.clip_by_value(stacked[..., :1], 0, 1))
        np.testing.assert_array_equal(out_mask, tf.cast(tf.round(stacked[..., 1:]), tf.int32))


@pytest.mark.parametrize("crop", [None, (40, 24)])
def test_rotation_alone_reads_the_pixels_of_the_general_resampler(crop):
    """The fast path (affine transform kernel) against the gather that elastic fields use:
    the same values wherever the source point lies inside the image."""
    from unet_tf.data.augment import resample_affine

    rng = np.random.default_rng(1)
    image = tf.constant(rng.random((64, 48, 3), dtype=np.float32))
    mask = tf.constant(rng.integers(0, 3, (64, 48, 1)).astype(np.float32))
    for s in range(4):
        coords = warp_coordinates(64, 48, tf.constant([s, 2]), max_degrees=20.0)
        if crop:
            coords = tf.transpose(tf.image.stateless_random_crop(
                tf.transpose(coords, [1, 2, 0]), [*crop, 2], [s, 3]), [2, 0, 1])
        rows, cols = coords.numpy()
        inside = (rows >= 0) & (rows <= 63) & (cols >= 0) & (cols <= 47)
        assert inside.mean() > 0.5 and (crop or inside.mean() < 1.0)  # corners: beyond edges
        fast, slow = resample_affine(image, coords, 1), resample(image, coords, 1)
        np.testing.assert_allclose(fast.numpy()[inside], slow.numpy()[inside], atol=1e-3)
        same = resample_affine(mask, coords, 0).numpy() == resample(mask, coords, 0).numpy()
        assert same[..., 0][inside].mean() > 0.998  # nearest: only ties at .5 may differ
        assert fast.shape == slow.shape == (*(crop or (64, 48)), 3)
