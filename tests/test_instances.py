"""Instance segmentation: targets, watershed, metrics with known answers, the instances source."""

import csv
import dataclasses
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import data_dir
from unet_tf import AugmentConfig, DataConfig, DataError, make_dataset
from unet_tf.data import load_instance_pairs, load_source
from unet_tf.data.augment import crop_pair
from unet_tf.instances import (
    INSTANCE_CLASS_NAMES,
    boundary_target,
    evaluate_instances,
    image_scores,
    label,
    object_table,
    semantic_label,
    write_outputs,
)

# --- targets ---------------------------------------------------------------------------------


def two_touching_squares() -> np.ndarray:
    ids = np.zeros((10, 14), np.uint16)
    ids[2:8, 1:7] = 1
    ids[2:8, 7:13] = 2
    return ids


def test_boundary_target_separates_touching_squares():
    target = boundary_target(two_touching_squares(), width=1)
    assert target.dtype == np.int32 and set(np.unique(target)) == {0, 1, 2}
    # a row through both squares: inner contour of each, 2 px of boundary where they touch
    assert target[4].tolist() == [0, 2, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 2, 0]
    assert (target[2, 1:13] == 2).all()  # top edges
    assert (target[two_touching_squares() == 0] == 0).all()  # background stays background
    interiors = target == 1
    from scipy.ndimage import label as components

    assert components(interiors)[1] == 2  # interiors no longer touch


def test_boundary_width_thickens_the_rim_and_matches_the_inner_contour_at_one():
    from skimage.segmentation import find_boundaries

    ids = two_touching_squares()
    wide = boundary_target(ids)  # default: 2 px per object, 4 px between touching ones
    assert wide[4].tolist() == [0, 2, 2, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 0]
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, (6, 6)).repeat(4, 0).repeat(4, 1)  # blocky objects, touching
    inner = (ids > 0).astype(np.int32)
    inner[find_boundaries(ids, mode="inner") & (ids > 0)] = 2
    np.testing.assert_array_equal(boundary_target(ids, width=1), inner)
    with pytest.raises(ValueError, match="at least 1"):
        boundary_target(ids, width=0)


# --- from probabilities to objects ------------------------------------------------------------


def touching_discs_probabilities(size=40, radius=9):
    """Softmax-like maps of two discs touching at the middle, with a boundary between them."""
    yy, xx = np.mgrid[:size, :size]
    ids = np.zeros((size, size), np.int32)
    for k, cx in enumerate((size // 2 - radius, size // 2 + radius), start=1):
        ids[(yy - size // 2) ** 2 + (xx - cx) ** 2 <= radius**2] = k
    target = boundary_target(ids)
    probabilities = np.eye(3, dtype=np.float32)[target] * 0.8 + 0.2 / 3
    return ids, probabilities


def test_label_separates_touching_discs_and_semantic_label_merges_them():
    ids, probabilities = touching_discs_probabilities()
    objects = label(probabilities)
    assert objects.dtype == np.int32 and objects.max() == 2
    assert image_scores(ids, objects)["ap_50_95"] == 1.0  # the boundary is handed back
    merged = semantic_label(probabilities)
    assert merged.max() == 1
    assert image_scores(ids, merged)["ap_75"] == 0.0  # the merged blob matches neither well


def test_label_keeps_markerless_blobs_and_drops_small_objects():
    probabilities = np.zeros((20, 20, 3), np.float32)
    probabilities[..., 0] = 1.0
    probabilities[2:6, 2:6] = [0.0, 0.0, 1.0]  # boundary only: too small for an interior
    probabilities[10:12, 10:12] = [0.0, 1.0, 0.0]  # 4 px: under min_size
    assert label(probabilities, min_size=5).max() == 1
    assert label(probabilities, min_size=1).max() == 2
    with pytest.raises(ValueError, match="background, interior, boundary"):
        label(probabilities[..., :2])


def test_object_table_rows():
    ids, probabilities = touching_discs_probabilities()
    rows = object_table(ids, probabilities)
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["area"] == int((ids == 1).sum())
    assert rows[0]["centroid_y"] == pytest.approx(19.5, abs=0.6)
    assert 0.8 < rows[0]["mean_probability"] <= 1.0


def test_write_outputs_files(tmp_path):
    ids, probabilities = touching_discs_probabilities()
    image = (probabilities * 255).astype(np.uint8)
    out = write_outputs(image, ids, probabilities, tmp_path, "cell", true=ids)
    np.testing.assert_array_equal(np.asarray(Image.open(out["instances"])), ids)
    assert Image.open(out["overlay"]).size == (40, 40)
    assert Image.open(out["comparison"]).mode == "RGB"
    with open(out["objects"], newline="") as f:
        assert [r["id"] for r in csv.DictReader(f)] == ["1", "2"]


# --- metrics with known answers ----------------------------------------------------------------


def squares(*boxes, shape=(20, 20)):
    ids = np.zeros(shape, np.int32)
    for k, (r0, r1, c0, c1) in enumerate(boxes, start=1):
        ids[r0:r1, c0:c1] = k
    return ids


def test_metrics_perfect_match_and_relabelled_ids():
    true = squares((0, 5, 0, 5), (10, 15, 10, 15))
    scores = image_scores(true, np.where(true > 0, 7 - true, 0))
    assert (scores["ap_50_95"], scores["ap_50"], scores["ap_75"], scores["aji"]) == (1, 1, 1, 1)


def test_metrics_split_object():
    true = squares((0, 10, 0, 10))
    pred = squares((0, 10, 0, 6), (0, 10, 6, 10))  # 60% and 40% of the object
    scores = image_scores(true, pred)
    # IoU 0.6 with the larger half: TP 1, FP 1, FN 0 -> 1/2 at t = 0.5, 0.55; 0 above
    assert scores["ap_50"] == 0.5 and scores["ap_75"] == 0.0
    assert scores["ap_50_95"] == pytest.approx(2 * 0.5 / 10)
    # AJI: the larger half pairs (60 / 100); the unpaired half adds its 40 px to the union
    assert scores["aji"] == pytest.approx(60 / 140)


def test_metrics_merged_pair():
    true = squares((0, 10, 0, 5), (0, 10, 5, 10))
    pred = squares((0, 10, 0, 10))
    scores = image_scores(true, pred)
    assert scores["ap_50_95"] == 0.0  # IoU 0.5 is not > 0.5
    assert scores["aji"] == pytest.approx(100 / 200)


def test_metrics_empty_prediction_and_empty_both():
    true = squares((0, 5, 0, 5))
    empty = np.zeros_like(true)
    assert image_scores(true, empty)["ap_50_95"] == 0.0
    assert image_scores(true, empty)["aji"] == 0.0
    assert image_scores(empty, true)["ap_50_95"] == 0.0
    both = image_scores(empty, empty)
    assert both["ap_50_95"] == 1.0 and both["aji"] == 1.0  # documented: nothing to find


def test_evaluate_instances_averages_over_images():
    true = squares((0, 5, 0, 5))
    result = evaluate_instances([(true, true), (true, np.zeros_like(true))])
    assert result["images"] == 2
    assert result["ap_50_95"] == result["ap_50"] == result["aji"] == 0.5
    assert result["per_threshold"]["0.95"] == 0.5
    assert (result["true_objects"], result["predicted_objects"]) == (2, 1)
    with pytest.raises(ValueError, match="shape"):
        evaluate_instances([(true, true[:4])])


# --- the instances: source and native-resolution crops -----------------------------------------


def make_instance_folder(root, sizes=((40, 56), (72, 48), (24, 30), (64, 64))):
    for name in ("images", "instances"):
        (root / name).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 255, (h, w, 4), np.uint8), "RGBA").save(
            root / "images" / f"{i}.png")
        ids = np.zeros((h, w), np.uint16)
        ids[2:12, 2:9] = 300  # 16-bit ids
        ids[2:12, 9:16] = 301
        Image.fromarray(ids).save(root / "instances" / f"{i}.png")
    return root


def native(root, **kwargs):
    return DataConfig(spec=f"instances:{root}", image_size=(32, 32), batch_size=4,
                      resolution="native", augment=AugmentConfig.none(), **kwargs)


def test_instances_source_yields_three_class_targets(tmp_path):
    root = make_instance_folder(tmp_path)
    source = load_source(native(root))
    assert source.class_names == INSTANCE_CLASS_NAMES and source.channels == 3
    image, mask = next(iter(source.examples))
    assert image.shape == (40, 56, 3) and mask.shape == (40, 56, 1)
    np.testing.assert_array_equal(mask.numpy()[..., 0], boundary_target(
        np.asarray(Image.open(root / "instances" / "0.png"))))
    fg = load_source(dataclasses.replace(native(root), spec=f"instances-foreground:{root}"))
    assert fg.class_names == ("background", "foreground")
    assert set(np.unique(next(iter(fg.examples))[1])) == {0, 1}


def test_native_resolution_crops_have_one_shape(tmp_path):
    root = make_instance_folder(tmp_path)
    for training in (True, False):
        ds, _ = make_dataset(native(root), training=training)
        x, y = next(iter(ds))
        assert x.shape == (4, 32, 32, 3) and y.shape == (4, 32, 32, 1)
        assert set(np.unique(y)) <= {0, 1, 2}
    # the 24 x 30 image is mirror-padded (edge pixels not repeated) around its centre
    image, mask = list(load_source(native(root)).examples)[2]
    _, cropped = crop_pair(image, mask, (32, 32))
    m, c = mask.numpy()[..., 0], cropped.numpy()[..., 0]
    np.testing.assert_array_equal(c[4:28, 1:31], m)
    np.testing.assert_array_equal(c[3, 1:31], m[1])
    ds, _ = make_dataset(native(root), training=True)
    again = next(iter(make_dataset(native(root), training=True)[0]))
    np.testing.assert_array_equal(next(iter(ds))[0], again[0])  # seeded crops repeat
    with pytest.raises(ValueError, match="resolution must be one of"):
        DataConfig(resolution="squash")
    assert DataConfig.from_dict({"spec": "synthetic"}).resolution == "resize"


def test_instances_source_checks_files(tmp_path):
    root = make_instance_folder(tmp_path / "a")
    Image.fromarray(np.zeros((5, 5), np.uint16)).save(root / "instances" / "1.png")
    with pytest.raises(DataError, match=r"instances/1.png: mask is 5x5"):
        load_source(native(root))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_source(native(root, skip_bad=True)).size == 3
    assert any("skipped 1 of 4" in str(w.message) for w in caught)
    (root / "instances" / "2.png").unlink()
    with pytest.raises(DataError, match=r"have no mask .*first: 2.png"):
        load_source(native(root))
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "instances").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        load_source(native(empty))
    with pytest.raises(DataError, match="needs images/ and instances/"):
        load_source(native(tmp_path / "nope"))


def test_load_instance_pairs_native_size_and_subsets(tmp_path):
    root = make_instance_folder(tmp_path)
    cfg = native(root, validation_fraction=0.25)
    train = load_instance_pairs(cfg, "training")
    val = load_instance_pairs(cfg, "validation")
    assert len(train) == 3 and len(val) == 1
    assert not {n for n, _, _ in train} & {n for n, _, _ in val}
    name, image, ids = val[0]
    assert image.dtype == np.uint8 and image.shape[2] == 3  # alpha dropped
    assert ids.shape == image.shape[:2] and set(np.unique(ids)) == {0, 300, 301}


def test_real_dsb_nuclei_targets():
    root = data_dir("dsb2018_nuclei")
    cfg = DataConfig(spec=f"instances:{root}", num_examples=2)
    name, image, ids = load_instance_pairs(cfg)[0]
    assert image.shape[:2] == ids.shape and ids.max() >= 1
    assert image_scores(ids, label(np.eye(3, dtype=np.float32)[boundary_target(ids)],
                                   min_size=1))["ap_50"] > 0.9


def test_weight_map_from_interiors_weighs_the_gap_between_touching_objects():
    # interiors (class 1) are the objects: the boundary class separates touching ones, so
    # weight_map_classes=(1,) is the instance weight map of the paper
    from unet_tf.data import unet_weight_map

    target = boundary_target(two_touching_squares(), width=1)
    weights = unet_weight_map(target, object_classes=(1,), sigma=2.0)
    assert weights[4, 6] > 4.0 and weights[4, 7] > 4.0  # between the squares: 1 + 10 e^(-9/8)
    assert weights[4, 3] == 1.0  # interior
    instance_weights = unet_weight_map(target, instances=two_touching_squares(), sigma=2.0)
    assert instance_weights[4, 6] == 1.0  # with instance ids the touching pixels are objects
