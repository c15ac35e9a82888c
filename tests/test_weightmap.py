import numpy as np
import pytest

from unet_tf.data.weightmap import unet_weight_map, with_weight_map


def two_objects():
    """Two 4-pixel-wide objects (class 1) separated by a 3-pixel gap (class 0)."""
    mask = np.zeros((10, 16), np.int32)
    mask[:, 2:6] = 1
    mask[:, 9:13] = 1
    return mask


def test_weight_map_values_on_two_objects():
    w = unet_weight_map(two_objects(), w0=10.0, sigma=5.0)
    expect = lambda d1, d2: 1.0 + 10.0 * np.exp(-((d1 + d2) ** 2) / 50.0)  # noqa: E731
    # gap columns 6, 7, 8: distances (1, 3), (2, 2), (3, 1) to the two objects
    np.testing.assert_allclose(w[:, 6], expect(1, 3), rtol=1e-5)
    np.testing.assert_allclose(w[:, 7], expect(2, 2), rtol=1e-5)
    np.testing.assert_allclose(w[:, 8], expect(3, 1), rtol=1e-5)
    # left of the first object: d1 = 2 (col 0) or 1 (col 1), d2 = distance to col 9
    np.testing.assert_allclose(w[0, 0], expect(2, 9), rtol=1e-5)
    np.testing.assert_allclose(w[0, 15], expect(3, 10), rtol=1e-5)
    # object pixels keep w_c only
    assert np.all(w[:, 2:6] == 1.0) and np.all(w[:, 9:13] == 1.0)


def test_class_weights_ignore_and_single_object():
    mask = two_objects()
    mask[0, 7] = 255
    w = unet_weight_map(mask, class_weights=[2.0, 0.5], w0=10.0, sigma=5.0)
    assert w[0, 7] == 0.0  # ignored pixel
    assert w[5, 3] == 0.5  # object pixel: w_c of class 1
    assert w[5, 7] > 2.0 + 5.0  # gap pixel: w_c of class 0 plus the border term
    one = np.zeros((8, 8), np.int32)
    one[2:5, 2:5] = 1
    assert np.all(unet_weight_map(one) == 1.0)  # one object: no gap to weight


def test_instances_and_component_classes():
    inst = np.zeros((10, 16), np.int32)
    inst[:, 2:6], inst[:, 6:8] = 3, 7  # touching instances: no gap pixel between them
    inst[:, 10:13] = 9
    mask = (inst > 0).astype(np.int32)
    w = unet_weight_map(mask, instances=inst, sigma=5.0)
    np.testing.assert_allclose(w[0, 8], 1 + 10 * np.exp(-(1 + 2) ** 2 / 50.0), rtol=1e-5)
    # as connected components of class 1, instances 3 and 7 merge into one object: the gap
    # weights stay, but left of it the second-nearest object is now far away (col 10)
    w_cc = unet_weight_map(mask, object_classes=[1], sigma=5.0)
    np.testing.assert_allclose(w_cc[:, 8:10], w[:, 8:10], rtol=1e-5)
    np.testing.assert_allclose(w[0, 0], 1 + 10 * np.exp(-(2 + 6) ** 2 / 50.0), rtol=1e-5)
    np.testing.assert_allclose(w_cc[0, 0], 1 + 10 * np.exp(-(2 + 10) ** 2 / 50.0), rtol=1e-5)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="sigma"):
        unet_weight_map(two_objects(), sigma=0)
    with pytest.raises(ValueError, match="class_weights has only 1"):
        unet_weight_map(two_objects(), class_weights=[1.0])


def test_with_weight_map_adds_sample_weights_to_batches():
    import tensorflow as tf

    masks = np.stack([two_objects()[..., None]] * 2)
    images = np.zeros((2, 10, 16, 1), np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, masks)).batch(2)
    x, y, w = next(iter(with_weight_map(ds, object_classes=[1])))
    assert w.shape == (2, 10, 16)
    np.testing.assert_allclose(w[1].numpy(), unet_weight_map(two_objects()), rtol=1e-6)
