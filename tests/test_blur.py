"""Background blur: a soft, feathered mask; own size and EXIF orientation kept."""

import numpy as np
import pytest
from _models import scene_files, trained_export
from PIL import Image

from unet_tf.apps import blur_background, keep_indices, soft_mask
from unet_tf.cli import main


class HalfPredictor:
    """Says the left half of any image is a pet, the right half background."""

    class_names = ("pet", "background")

    def predict(self, image, return_probabilities=False, **options):
        image = np.asarray(image)
        probs = np.zeros(image.shape[:2] + (2,), np.float32)
        probs[:, : image.shape[1] // 2, 0] = 1.0
        probs[..., 1] = 1.0 - probs[..., 0]
        mask = probs.argmax(-1).astype(np.uint8)
        return (mask, probs) if return_probabilities else mask


def checkerboard(height, width, cell=4):
    y, x = np.mgrid[:height, :width]
    board = (((y // cell) + (x // cell)) % 2 * 255).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=-1)


def test_subject_stays_sharp_and_background_is_blurred():
    image = checkerboard(120, 200)
    result, alpha = blur_background(image, HalfPredictor(), keep=["pet"], strength=0.05,
                                    feather=0.01, return_mask=True)
    assert result.shape == image.shape and result.dtype == np.uint8
    assert np.array_equal(result[:, :80], image[:, :80])  # deep inside the subject
    assert result[:, 130:].std() < 0.2 * image[:, 130:].std()  # the pattern is gone
    edge = alpha[60, 90:110]
    assert np.all(np.diff(edge) <= 1e-6) and edge[0] > 0.9 and edge[-1] < 0.1  # soft ramp


def test_feather_widens_the_edge():
    probs = np.zeros((10, 100, 2), np.float32)
    probs[:, :50, 0] = 1.0
    probs[..., 1] = 1.0 - probs[..., 0]
    narrow = soft_mask(probs, [0], feather=1.0)[5]
    wide = soft_mask(probs, [0], feather=8.0)[5]
    band = lambda a: int(np.sum((a > 0.05) & (a < 0.95)))  # noqa: E731
    assert band(wide) > 3 * band(narrow) >= 3
    assert 0.0 <= wide.min() and wide.max() <= 1.0


def test_keep_names_are_checked():
    assert keep_indices(["PET"], ("pet", "background")) == [0]
    with pytest.raises(ValueError, match=r"keep='dog' is not one of the model's classes"):
        keep_indices(["dog"], ("pet", "background"))
    with pytest.raises(ValueError, match="strength and feather must be >= 0"):
        blur_background(checkerboard(8, 8), HalfPredictor(), ["pet"], strength=-1)


def test_exif_orientation_and_size_are_kept(tmp_path):
    from unet_tf.outputs import blur_files

    stored = Image.fromarray(checkerboard(90, 160))  # landscape pixels ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... shown rotated 90 degrees: a portrait photo
    exif[0x010F] = "TestCam"
    stored.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    [result] = blur_files(HalfPredictor(), [tmp_path / "phone.jpg"], tmp_path / "out",
                          keep=["pet"])
    with Image.open(result["result"]) as out:
        assert out.size == (90, 160)  # width x height: upright portrait
        assert out.getexif().get(0x0112) == 1 and out.getexif().get(0x010F) == "TestCam"
    # photo, mask and result side by side, each scaled to 320 px high (90 x 160 -> 180 wide)
    with Image.open(result["figure"]) as figure:
        assert figure.size == (3 * (180 + 8), 320 + 30)
        panel = np.asarray(figure.convert("L"))[26 + 160, 188 + 4:188 + 4 + 180]
    assert panel[:80].min() > 200 and panel[100:].max() < 50  # the mask: left half kept


@pytest.mark.slow  # the shared trained model and its export
def test_cli_blur_on_a_scene_keeps_its_size(tmp_path_factory, tmp_path, capsys):
    _, out, _ = trained_export(tmp_path_factory)
    [photo] = scene_files(tmp_path / "in", 1, size=120)
    code = main(["-q", "blur", "--model", str(out), "--keep", "background", str(photo),
                 "--out", str(tmp_path), "--strength", "0.03", "--tile", "64"])
    assert code == 0
    assert "_blur.png" in capsys.readouterr().out
    with Image.open(photo) as original, Image.open(tmp_path / f"{photo.stem}_blur.png") as res:
        assert res.size == original.size
        before, after = np.asarray(original.convert("RGB")), np.asarray(res)
    # what the model keeps stays sharp, the rest is blurred: judged on the model's own mask,
    # away from the feathered edges
    from scipy import ndimage

    from unet_tf import Predictor

    mask = Predictor.from_path(out).predict(before, tile=64)
    kept = mask == 0  # the background is kept sharp here; the shapes are blurred
    assert 0.05 < kept.mean() < 0.95, kept.mean()
    inside = ndimage.binary_erosion(kept, iterations=6)  # past the feathered edge
    outside = ndimage.binary_erosion(~kept, iterations=2)
    assert inside.sum() > 100 and outside.sum() > 50, (inside.sum(), outside.sum())
    # detail: the change from each pixel to its right neighbour, kept where the model keeps
    # (its soft probabilities, not the argmax, weigh the blur) and lost where it does not
    d_before, d_after = (np.abs(np.diff(a.astype(float), axis=1)).sum(-1) for a in (before, after))
    inside, outside = inside[:, 1:], outside[:, 1:]
    kept_detail = d_after[inside].mean() / d_before[inside].mean()
    lost_detail = d_after[outside].mean() / d_before[outside].mean()
    assert kept_detail > lost_detail + 0.2 and lost_detail < 0.6, (kept_detail, lost_detail)
    assert (tmp_path / f"{photo.stem}_blur_figure.png").exists()
    assert main(["blur", "--model", str(out), "--keep", "dog", str(photo),
                 "--out", str(tmp_path), "--overwrite"]) == 2
    assert "not one of the model's classes" in capsys.readouterr().err
