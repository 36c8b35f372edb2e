"""Tests for mrcnn.vis.drawing: every function draws a non-blank PNG without a display,
mismatched inputs raise ValueError, drawing to a file leaves pyplot alone and drawing without
one shows a pyplot figure as matterport did."""

import os
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from mrcnn.vis import drawing as visualize

CLASS_NAMES = ["BG", "square", "circle", "triangle"]


def _image():
    image = np.zeros((64, 80, 3), np.uint8)
    image[..., 0] = np.arange(80, dtype=np.uint8)[None, :] * 3
    image[..., 2] = 120
    return image


def _instances():
    boxes = np.array([[5, 5, 30, 40], [20, 30, 60, 75]])
    masks = np.zeros((64, 80, 2), bool)
    masks[5:30, 5:40, 0] = True
    masks[20:60, 30:75, 1] = True
    return boxes, masks, np.array([1, 2]), np.array([0.9, 0.75])


def _png(path):
    """Open a written PNG; check it is a real, non-blank picture; return it as an array."""
    assert os.path.getsize(path) > 0
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        array = np.asarray(picture.convert("RGB"))
    assert array.ndim == 3 and array.shape[0] > 20 and array.shape[1] > 20
    assert len(np.unique(array.reshape(-1, 3), axis=0)) > 2, "blank picture"
    return array


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- numpy helpers

def test_random_colors_distinct_reproducible():
    colors = visualize.random_colors(5, seed=3)
    assert len(set(colors)) == 5
    assert colors == visualize.random_colors(5, seed=3)
    assert all(0 <= c <= 1 for color in colors for c in color)
    # Not bright: the HSV value 0.7 is the largest channel.
    assert max(max(c) for c in visualize.random_colors(4, bright=False)) == pytest.approx(0.7)


def test_apply_mask_blends_only_masked_pixels():
    image = np.full((4, 4, 3), 100.0)
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    out = visualize.apply_mask(image, mask, (1.0, 0.0, 0.5), alpha=0.5)
    # 100 * 0.5 + 0.5 * c * 255
    assert out[1, 2].tolist() == [177.5, 50.0, 113.75]
    assert out[0, 0].tolist() == [100.0, 100.0, 100.0]
    with pytest.raises(ValueError, match="mask shape"):
        visualize.apply_mask(image, np.zeros((3, 4)), (1, 0, 0))


def test_draw_box_outline_in_place():
    image = np.zeros((10, 12, 3), np.uint8)
    out = visualize.draw_box(image, (2, 3, 7, 9), (255, 0, 0))
    assert out is image
    assert image[2, 3:10, 0].tolist() == [255] * 7       # top edge, 2 px thick
    assert image[3, 5, 0] == 255
    assert image[7, 3:10, 0].tolist() == [255] * 7       # bottom edge
    assert image[2:8, 9, 0].tolist() == [255] * 6        # right edge
    assert image[5, 6].tolist() == [0, 0, 0]             # inside untouched
    assert image[0, 0].tolist() == [0, 0, 0]             # outside untouched
    visualize.draw_box(image, (-5, -5, 50, 50), (0, 255, 0))  # clipped, no error
    assert image[0, 0, 1] == 255 and image[9, 11, 1] == 255
    with pytest.raises(ValueError, match="box"):
        visualize.draw_box(image, (1, 2, 3), (0, 0, 0))
    with pytest.raises(ValueError, match="image"):
        visualize.draw_box(np.zeros((10, 10)), (1, 2, 3, 4), 1)


def test_figure_to_array_shape():
    fig = plt.figure(figsize=(2, 1.5), dpi=100)
    array = visualize.figure_to_array(fig)
    assert array.shape == (150, 200, 3) and array.dtype == np.uint8


# ---------------------------------------------------------------- drawings to PNG

def test_display_instances_png(tmp_path):
    boxes, masks, ids, scores = _instances()
    path = str(tmp_path / "sub" / "inst.png")
    ax = visualize.display_instances(_image(), boxes, masks, ids, CLASS_NAMES, scores,
                                     title="t", figsize=(4, 4), path=path)
    assert [t.get_text() for t in ax.texts] == ["square 0.900", "circle 0.750"]
    _png(path)
    assert os.listdir(tmp_path / "sub") == ["inst.png"]  # no temporary left behind


def test_display_instances_mismatched_counts():
    boxes, masks, ids, scores = _instances()
    with pytest.raises(ValueError, match="Counts"):
        visualize.display_instances(_image(), boxes, masks[..., :1], ids, CLASS_NAMES)
    with pytest.raises(ValueError, match="Counts"):
        visualize.display_instances(_image(), boxes, masks, ids[:1], CLASS_NAMES)
    with pytest.raises(ValueError, match="Counts"):
        visualize.display_instances(_image(), boxes, masks, ids, CLASS_NAMES, scores[:1])
    with pytest.raises(ValueError, match="Counts"):
        visualize.display_instances(_image(), boxes, masks, ids, CLASS_NAMES, captions=["a"])
    with pytest.raises(ValueError, match="colors"):
        visualize.display_instances(_image(), boxes, masks, ids, CLASS_NAMES,
                                    colors=[(1, 0, 0)])


def test_display_images_png(tmp_path):
    path = str(tmp_path / "grid.png")
    fig = visualize.display_images([_image(), _image()[..., 1]], titles=["a", "b"], cols=2,
                                   cmap="gray", path=path)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    _png(path)
    with pytest.raises(ValueError, match="Counts"):
        visualize.display_images([_image(), _image()], titles=["only one"])
    with pytest.raises(ValueError, match="at least one"):
        visualize.display_images([])


def test_detections_grid_png(tmp_path):
    boxes, masks, ids, scores = _instances()
    r = {"rois": boxes, "masks": masks, "class_ids": ids, "scores": scores}
    path = str(tmp_path / "dets.png")
    visualize.detections_grid([_image()] * 3, [r] * 3, CLASS_NAMES, path, cols=2)
    _png(path)
    with pytest.raises(ValueError, match="Counts"):
        visualize.detections_grid([_image()] * 2, [r], CLASS_NAMES, None)


def test_display_differences_png_and_captions(tmp_path):
    boxes, masks, ids, _ = _instances()
    # Prediction 0 (score 0.6) matches gt 1 exactly; prediction 1 (0.8) overlaps nothing.
    pred_masks = np.zeros((64, 80, 2), bool)
    pred_masks[20:60, 30:75, 0] = True
    pred_masks[0:4, 0:4, 1] = True
    pred_boxes = np.array([[20, 30, 60, 75], [0, 0, 4, 4]])
    path = str(tmp_path / "diff.png")
    ax = visualize.display_differences(
        _image(), boxes, ids, masks, pred_boxes, np.array([2, 1]), np.array([0.6, 0.8]),
        pred_masks, CLASS_NAMES, path=path)
    # Predictions are drawn in descending score order: "score / IoU".
    assert [t.get_text() for t in ax.texts] == ["", "", "0.80 / 0.00", "0.60 / 1.00"]
    _png(path)
    with pytest.raises(ValueError, match="Counts"):
        visualize.display_differences(_image(), boxes, ids[:1], masks, pred_boxes,
                                      np.array([2, 1]), np.array([0.6, 0.8]), pred_masks,
                                      CLASS_NAMES)
    with pytest.raises(ValueError, match="Counts"):
        visualize.display_differences(_image(), boxes, ids, masks, pred_boxes,
                                      np.array([2, 1]), np.array([0.6]), pred_masks,
                                      CLASS_NAMES)


def test_draw_rois_png(tmp_path):
    rois = np.array([[5, 5, 30, 40], [20, 30, 60, 75], [0, 0, 10, 10]])
    refined = rois + np.array([1, 1, -1, -1])
    mask = np.zeros((3, 7, 7))
    mask[:, 1:6, 1:6] = 1.0
    class_ids = np.array([1, 2, 0])
    path = str(tmp_path / "rois.png")
    ax = visualize.draw_rois(_image(), rois, refined, mask, class_ids, CLASS_NAMES, limit=3,
                             seed=0, path=path)
    assert "positive: 2, negative: 1" in ax.get_title()
    assert sorted(t.get_text() for t in ax.texts) == ["circle", "square"]
    _png(path)
    with pytest.raises(ValueError, match="Counts"):
        visualize.draw_rois(_image(), rois, refined[:2], mask, class_ids, CLASS_NAMES)


def test_display_top_masks_png(tmp_path):
    _, masks, _, _ = _instances()
    masks = np.concatenate([masks, masks[..., :1]], axis=-1)
    path = str(tmp_path / "top.png")
    fig = visualize.display_top_masks(_image(), masks, np.array([1, 2, 1]), CLASS_NAMES,
                                      limit=3, path=path)
    # Circle (40 x 45 px) has a larger area than the square's (25 x 35, twice overlapping).
    assert [ax.get_title() for ax in fig.axes][1:] == ["circle", "square", "-"]
    _png(path)
    with pytest.raises(ValueError, match="Counts"):
        visualize.display_top_masks(_image(), masks, np.array([1, 2]), CLASS_NAMES)
    with pytest.raises(ValueError, match="H, W, N"):
        visualize.display_top_masks(_image(), masks[..., 0], np.array([1]), CLASS_NAMES)


def test_plot_precision_recall_png(tmp_path):
    path = str(tmp_path / "pr.png")
    ax = visualize.plot_precision_recall(0.75, np.array([1, 1, 0.5, 0.5]),
                                         np.array([0, 0.5, 0.5, 1.0]), path=path)
    assert "0.750" in ax.get_title()
    _png(path)
    with pytest.raises(ValueError, match="Counts"):
        visualize.plot_precision_recall(0.5, np.array([1, 0.5]), np.array([0, 0.5, 1]))


def test_plot_overlaps_png(tmp_path):
    overlaps = np.array([[0.9, 0.1], [0.6, 0.0], [0.0, 0.2]])
    path = str(tmp_path / "overlaps.png")
    ax = visualize.plot_overlaps(np.array([1, 2]), np.array([1, 3, 2]),
                                 np.array([0.9, 0.8, 0.7]), overlaps, CLASS_NAMES, path=path)
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == "0.900\nmatch" and texts[2] == "0.600\nwrong"
    assert texts[1] == "0.100\n"
    _png(path)
    with pytest.raises(ValueError, match="shape"):
        visualize.plot_overlaps(np.array([1, 2]), np.array([1, 3, 2]),
                                np.array([0.9, 0.8, 0.7]), overlaps.T, CLASS_NAMES)
    with pytest.raises(ValueError, match="Counts"):
        visualize.plot_overlaps(np.array([1, 2]), np.array([1, 3, 2]), np.array([0.9]),
                                overlaps, CLASS_NAMES)


def test_draw_boxes_png(tmp_path):
    boxes, masks, _, _ = _instances()
    path = str(tmp_path / "boxes.png")
    ax = visualize.draw_boxes(_image(), boxes=boxes, refined_boxes=boxes + 2, masks=masks,
                              captions=["a", "b"], visibilities=[2, 1], title="x", path=path)
    assert [t.get_text() for t in ax.texts] == ["a", "b"]
    assert len(ax.lines) == 2
    _png(path)
    with pytest.raises(ValueError, match="needs boxes"):
        visualize.draw_boxes(_image())
    with pytest.raises(ValueError, match="Counts"):
        visualize.draw_boxes(_image(), boxes=boxes, captions=["only one"])
    with pytest.raises(ValueError, match="Counts"):
        visualize.draw_boxes(_image(), boxes=boxes, masks=masks[..., :1])


def test_display_table_html_and_png(tmp_path):
    path = str(tmp_path / "table.png")
    out = visualize.display_table([["name", "value"], ["a<b", 1.5]], path=path)
    assert out == ("<table><tr><td>name</td><td>value</td></tr>"
                   "<tr><td>a&lt;b</td><td>1.5</td></tr></table>")
    _png(path)
    with pytest.raises(ValueError, match="at least one row"):
        visualize.display_table([])


def test_display_weight_stats_keras_model(tmp_path):
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="fc")])
    model.get_layer("fc").set_weights([np.array([[1.0, -2.0], [0.0, 0.0], [3.0, 0.0]]),
                                       np.zeros(2)])

    class Facade:  # MaskRCNN exposes its network as keras_model
        keras_model = model

    path = str(tmp_path / "weights.png")
    rows = visualize.display_weight_stats(Facade(), path=path)
    assert rows[0] == ["WEIGHT NAME", "SHAPE", "MIN", "MAX", "STD", "NOTE"]
    kernel, bias = rows[1], rows[2]
    assert kernel[0].endswith("kernel") and kernel[1] == "(3, 2)"
    assert float(kernel[2]) == -2.0 and float(kernel[3]) == 3.0
    # std of [1, -2, 0, 0, 3, 0] = sqrt(14/6 - (2/6)**2)
    assert float(kernel[4]) == pytest.approx(np.sqrt(14 / 6 - 1 / 9), abs=1e-4)
    assert bias[5] == ""  # a constant bias is normal
    _png(path)

    model.get_layer("fc").set_weights([np.zeros((3, 2)), np.full(2, np.nan)])
    notes = [row[5] for row in visualize.display_weight_stats(model)[1:]]
    assert notes == ["constant (dead?)", "non-finite values"]
    with pytest.raises(TypeError, match="Keras model"):
        visualize.display_weight_stats(object())


def test_visualize_does_not_import_tensorflow():
    code = ("import sys; import mrcnn.vis.drawing; "
            "sys.exit(1 if 'tensorflow' in sys.modules or 'keras' in sys.modules else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- matplotlib state

def test_drawing_to_a_file_never_touches_pyplot(tmp_path):
    boxes, masks, ids, scores = _instances()
    before = plt.get_fignums()
    drawings = [
        visualize.display_instances(_image(), boxes, masks, ids, CLASS_NAMES, scores,
                                    path=str(tmp_path / "a.png")).figure,
        visualize.display_images([_image()], path=str(tmp_path / "b.png")),
        visualize.draw_boxes(_image(), boxes=boxes, path=str(tmp_path / "c.png")).figure,
        visualize.plot_precision_recall(0.5, np.array([1, 0.5]), np.array([0.5, 1.0]),
                                        path=str(tmp_path / "d.png")).figure,
    ]
    visualize.detections_grid([_image()], [{"rois": boxes, "masks": masks, "class_ids": ids}],
                              CLASS_NAMES, str(tmp_path / "e.png"))
    visualize.display_table([["a", "b"]], path=str(tmp_path / "f.png"))
    assert plt.get_fignums() == before  # no pyplot figure was made (none to leak or show)
    for fig in drawings:
        assert isinstance(fig.canvas, FigureCanvasAgg) and fig.canvas.manager is None
    for name in "abcdef":
        _png(tmp_path / f"{name}.png")


def test_without_a_path_pyplot_figures_are_shown_as_matterport(monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(1))
    boxes, masks, ids, scores = _instances()
    ax = visualize.display_instances(_image(), boxes, masks, ids, CLASS_NAMES, scores)
    assert ax.figure.number in plt.get_fignums() and len(shown) == 1
    visualize.display_images([_image()])
    assert len(shown) == 2
    # Into the caller's axes, or a diagnostic plot: drawn, not shown (as matterport).
    _, own_ax = plt.subplots()
    visualize.display_instances(_image(), boxes, masks, ids, CLASS_NAMES, ax=own_ax)
    visualize.plot_precision_recall(0.5, np.array([1, 0.5]), np.array([0.5, 1.0]))
    assert len(shown) == 2


def test_saving_the_callers_axes_leaves_their_figure_open(tmp_path):
    fig, ax = plt.subplots()
    boxes, masks, ids, scores = _instances()
    visualize.display_instances(_image(), boxes, masks, ids, CLASS_NAMES, ax=ax,
                                path=str(tmp_path / "mine.png"))
    _png(tmp_path / "mine.png")
    assert fig.number in plt.get_fignums()


def test_figure_to_array_of_a_pyplot_free_figure_and_release():
    fig = Figure(figsize=(1, 0.5), dpi=100)  # no canvas with a pixel buffer of its own
    fig.add_subplot().plot([0, 1], [1, 0])
    array = visualize.figure_to_array(fig)
    assert array.shape == (50, 100, 3) and array.std() > 0
    managed = plt.figure(figsize=(1, 1), dpi=50)
    assert visualize.figure_to_array(managed).shape == (50, 50, 3)
    assert managed.number not in plt.get_fignums()


def test_a_notebook_backend_survives_drawing_to_files(tmp_path):
    """Drawing with path= in a fresh process neither picks a backend nor imports pyplot; a
    backend the user chose stays chosen."""
    code = ("import sys, matplotlib, numpy as np\n"
            "from mrcnn import visualize\n"
            "mask = np.zeros((32, 32, 1), bool); mask[2:20, 2:20] = True\n"
            "image = np.full((32, 32, 3), 90, np.uint8)\n"
            "args = (image, np.array([[2, 2, 20, 20]]), mask, np.array([1]), ['BG', 'a'])\n"
            "visualize.display_instances(*args, path=sys.argv[1])\n"
            "print(matplotlib.rcParams._get_backend_or_none(), 'matplotlib.pyplot' in "
            "sys.modules)\n"
            "matplotlib.use('svg')\n"
            "visualize.display_instances(*args, path=sys.argv[2])\n"
            "print(matplotlib.get_backend())\n")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "1.png"),
                             str(tmp_path / "2.png")], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "False", "svg"]
    _png(tmp_path / "1.png")
    _png(tmp_path / "2.png")


# ---------------------------------------------------------------------------- labels, PR plot
def test_labels_stay_inside_the_image_and_do_not_overlap():
    from mrcnn.vis.labels import place_label

    placed = []
    # Three boxes at the same corner near the right edge: captions stack downwards.
    spots = [place_label("triangle 0.999", 95, 0, (100, 100), placed, char_size=6)
             for _ in range(3)]
    for (x, y), (x1, y1, x2, y2) in zip(spots, placed, strict=True):
        assert (x, y) == (x1, y1) and x1 >= 0 and x2 <= 100 and y2 <= 100
    assert [round(y, 1) for _, y in spots] == [0.0, 7.8, 15.6]  # one line (1.3 * 6) apart
    # A caption that would leave the image at the bottom-left is moved up and right.
    x, y = place_label("circle", -5, 99, (100, 100), [], char_size=6)
    assert (x, round(y, 1)) == (0.0, 92.2)


def test_precision_recall_png(tmp_path):
    import cv2

    from mrcnn.vis.stats import plot_pr_curves

    recall = np.linspace(0, 1, 101)
    path = tmp_path / "pr.png"
    plot_pr_curves({"segm IoU 0.50": (recall, 1 - recall ** 2),
                    "segm IoU 0.75": (recall, 1 - recall)}, title="t", path=str(path))
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 300 and image.std() > 1
    with pytest.raises(ValueError, match="at least one curve"):
        plot_pr_curves({}, path=str(tmp_path / "x.png"))
