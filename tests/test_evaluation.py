"""keras_unet/evaluation.py: hand-computed scores, the ISBI 2012 definitions, real data.

Every expected number below is worked out by hand in the comments. The ISBI values
(V_rand, V_info, the flooded proposals) were also checked, outside this suite, against
a line-by-line transcription of the challenge's Java code (fiji/Trainable_Segmentation
RandError, VariationOfInformation, WatershedTransform2D): identical partitions on 300
random images and the ISBI masks, per-threshold scores equal to 1e-13.
"""

import re
import warnings
from math import log

import numpy as np
import pytest
from scipy import ndimage
from skimage import io
from skimage.metrics import adapted_rand_error

from keras_unet.evaluation import (
    ISBI_THRESHOLDS, SURFACE_CONNECTIVITY, check_same_kind, dice, evaluate_folders,
    flood_proposal, hd95, iou, isbi_pixel_error, isbi_scores, pixel_error, precision_recall_f1,
    roc_auc, roc_curve, surface_dice,
)
from keras_unet.images import as_mask, as_prediction

def _read_mask(path):
    return io.imread(path) // 255  # 255 = cell interior / vessel -> 1


@pytest.fixture(scope="module")
def isbi_mask(shared_data):
    return _read_mask(shared_data / "isbi2012_em" / "masks" / "00.png")


# --------------------------------------------------------------- Dice and IoU

TRUTH = np.array([[1, 1, 0, 0],
                  [1, 0, 0, 0]])
PROBS = np.array([[0.8, 0.4, 0.6, 0.1],
                  [0.9, 0.0, 0.2, 0.0]])
# > 0.5: [[1, 0, 1, 0], [1, 0, 0, 0]] -> TP 2, FP 1 (0, 2), FN 1 (0, 1)
# > 0.3: [[1, 1, 1, 0], [1, 0, 0, 0]] -> TP 3, FP 1, FN 0


def test_binary_dice_and_iou_by_hand():
    assert dice(TRUTH, PROBS) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # 2/3
    assert iou(TRUTH, PROBS) == pytest.approx(2 / (2 + 1 + 1))  # 1/2
    assert dice(TRUTH, PROBS, threshold=0.3) == pytest.approx(6 / 7)
    assert iou(TRUTH, PROBS, threshold=0.3) == pytest.approx(3 / 4)
    # a binary prediction is its own binarisation; iou = dice / (2 - dice)
    assert dice(TRUTH, TRUTH) == 1.0
    d = dice(TRUTH, PROBS)
    assert iou(TRUTH, PROBS) == pytest.approx(d / (2 - d))


def test_binarisation_is_strictly_greater_than_the_threshold():
    truth = np.array([1, 1])
    assert dice(truth, np.array([0.5, 0.51])) == pytest.approx(2 / 3)  # 0.5 is background
    # compared in float64, as Java compares a float pixel with a double threshold:
    # float32(0.1) = 0.10000000149 > 0.1, though float32(0.1) > float32(0.1) is False
    assert dice(np.array([1]), np.array([0.1], np.float32), threshold=0.1) == 1.0


def test_empty_masks_are_defined():
    empty = np.zeros((3, 3))
    assert dice(empty, empty) == 1.0 and iou(empty, empty) == 1.0
    one = empty.copy()
    one[1, 1] = 1
    assert dice(empty, one) == 0.0 and iou(one, empty) == 0.0


def test_empty_masks_score_without_nan_or_warnings():
    empty, one = np.zeros((4, 4)), np.zeros((4, 4))
    one[1, 1] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NumPy RuntimeWarning fails the test
        assert pixel_error(empty, empty) == 0.0 and pixel_error(empty, one) == 1 / 16
        assert precision_recall_f1(empty, empty) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
        assert precision_recall_f1(empty, one)["f1"] == 0.0
        assert isbi_pixel_error(empty, empty) == 0.0
        scores = dice(np.zeros(4, int), np.zeros(4, int), n_classes=3)  # classes 1, 2 absent
        assert scores["per_class"].tolist() == [1.0, 1.0, 1.0]
        # an image without a cell: 1.0 where nothing is proposed, else 0.0, never NaN
        both = isbi_scores(empty, empty)
        assert (both["V_rand"], both["V_info"], both["pixel_error"]) == (1.0, 1.0, 0.0)
        only = isbi_scores(one, empty, thresholds=[0.5])
        assert (only["V_rand"], only["V_info"]) == (0.0, 0.0)
        # the threshold sweep finds the empty proposal: nothing is above 0.7 from t = 0.7
        swept = isbi_scores(one * 0.7, empty)
        assert swept["V_rand"] == 1.0 and 0.6 < swept["V_rand_threshold"] < 0.8
        # in a stack, the empty image's 0.0 or 1.0 is averaged with the others
        cells = np.array([[1, 1, 0, 1, 1]] * 2)
        stack = isbi_scores(np.stack([cells, np.ones((2, 5))]) * 1.0,
                            np.stack([cells, np.zeros((2, 5), int)]), thresholds=[0.5])
        assert stack["V_rand_per_threshold"].tolist() == [0.5]
        assert stack["V_info_per_threshold"].tolist() == [0.5]


def test_binary_and_class_masks_do_not_mix():
    classes = np.array([[0, 1], [2, 3]])
    binary = np.array([[0.0, 1.0], [1.0, 1.0]], np.float32)
    for truth, prediction, message in [
        (classes, binary, "truth holds class indices (0, 1, 2, 3) but prediction is a binary "
                          "mask (float32 in [0, 1])"),
        (binary, classes, "truth is a binary mask (float32 in [0, 1]) but prediction holds "
                          "class indices (0, 1, 2, 3)"),
        (classes, binary > 0, "but prediction is a binary mask (bool in [0, 1])"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            check_same_kind(truth, prediction)
    with pytest.raises(ValueError, match="but prediction is a binary mask"):
        dice(classes, binary, n_classes=4)  # before: 4 classes scored, mean 0.375
    with pytest.raises(ValueError, match="but prediction is a binary mask"):
        pixel_error(classes, binary > 0, n_classes=4)
    # 0/1 integers go with either kind, and per-class probabilities are not checked
    check_same_kind(np.array([0, 1]), np.array([0.2, 0.9]))
    check_same_kind(np.array([0, 1]), np.array([0, 2]))
    assert dice(np.array([0, 1]), np.array([0.0, 1.0]), n_classes=2)["mean"] == 1.0
    probabilities = np.eye(4)[classes.ravel()].reshape(2, 2, 4)
    assert iou(classes, probabilities, n_classes=4)["mean"] == 1.0
    with _raises("prediction holds class indices (0, 1, 2, 3): pass n_classes= to score "
                 "classes"):
        dice(np.array([[0, 1], [1, 1]]), classes)


def test_channel_axis_and_batches_are_pooled():
    # (2, 2, 1) truth against (2, 2) probabilities: the trailing channel is dropped
    assert dice(TRUTH[:, :2, None], PROBS[:, :2]) == pytest.approx(2 * 2 / (4 + 1))
    # a batch is one big image: image 1 TP 1 of 1; image 2 TP 0, FP 1, FN 1
    truth = np.array([[[1, 0]], [[1, 0]]])
    prediction = np.array([[[1, 0]], [[0, 1]]])
    assert dice(truth, prediction) == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))  # 0.5
    assert np.mean([dice(t, p) for t, p in zip(truth, prediction)]) == 0.5  # (1 + 0) / 2


def test_multiclass_dice_and_iou_by_hand():
    truth = np.array([0, 1, 2, 2, 1, 0])
    prediction = np.array([0, 1, 1, 2, 1, 2])
    # class 0: TP 1, FN 1 -> dice 2/3, iou 1/2
    # class 1: TP 2, FP 1 -> dice 4/5, iou 2/3
    # class 2: TP 1, FP 1, FN 1 -> dice 1/2, iou 1/3
    scores = dice(truth, prediction, n_classes=3)
    assert scores["per_class"] == pytest.approx([2 / 3, 4 / 5, 1 / 2])
    assert scores["mean"] == pytest.approx((2 / 3 + 4 / 5 + 1 / 2) / 3)
    scores = iou(truth, prediction, n_classes=3)
    assert scores["per_class"] == pytest.approx([1 / 2, 2 / 3, 1 / 3])
    assert scores["mean"] == pytest.approx(0.5)
    # per-class probabilities with a trailing class axis: the arg-max is scored
    probabilities = np.eye(3)[prediction] * 0.8 + 0.1
    assert dice(truth, probabilities, n_classes=3)["per_class"] == pytest.approx(
        [2 / 3, 4 / 5, 1 / 2])
    # a class absent from truth and prediction scores 1.0 and counts in the mean
    scores = dice(truth[:, None], prediction, n_classes=4)
    assert scores["per_class"][3] == 1.0
    assert scores["mean"] == pytest.approx((2 / 3 + 4 / 5 + 1 / 2 + 1) / 4)


def test_multilabel_dice_and_iou_per_label_then_averaged():
    truth = np.zeros((2, 2, 2))
    truth[0, :, 0] = 1  # label 0: the top row
    truth[:, 0, 1] = 1  # label 1: the left column
    prediction = truth * 0.9
    prediction[1, 1, 1] = 0.8  # one extra pixel of label 1: dice 4/5, iou 2/3
    scores = dice(truth, prediction, mode="multilabel")
    assert scores["per_label"].tolist() == pytest.approx([1.0, 4 / 5])
    assert scores["mean"] == pytest.approx(0.9)
    assert iou(truth, prediction, mode="multilabel")["per_label"].tolist() == pytest.approx(
        [1.0, 2 / 3])
    assert pixel_error(truth, prediction, mode="multilabel") == 1 / 8
    with pytest.raises(ValueError, match=r"must have the same shape; got \(2, 2, 2\)"):
        dice(truth, prediction[..., :1], mode="multilabel")


def test_a_0_255_mask_is_refused_whatever_its_integer_type():
    for dtype in (np.uint8, np.int32, np.int64):
        mask = np.array([[0, 255], [255, 0]], dtype)
        message = re.escape(_message(lambda: as_mask(mask, "truth")))
        for call in (lambda: dice(mask, mask > 0), lambda: dice(mask, mask, n_classes=256),
                     lambda: isbi_scores(np.ones((2, 2)), mask)):
            with pytest.raises(ValueError, match=message.replace("truth", "(truth|prediction)")):
                call()


# ---------------------------------------------------------------- pixel error


def test_isbi_pixel_error_is_one_minus_the_best_f_score():
    truth = np.array([[1, 1, 0, 0]])
    probabilities = np.array([[0.9, 0.2, 0.7, 0.0]])
    # t in [0, 0.2): [1, 1, 1, 0] F = 4/5;  [0.2, 0.7): [1, 0, 1, 0] F = 1/2;
    # [0.7, 0.9): [1, 0, 0, 0] F = 2/3;  >= 0.9: nothing, F = 0
    assert isbi_pixel_error(probabilities, truth) == pytest.approx(1 - 4 / 5)
    assert isbi_pixel_error(probabilities, truth, thresholds=[0.5]) == pytest.approx(1 / 2)
    assert isbi_pixel_error(probabilities, truth, thresholds=[0.8]) == pytest.approx(1 / 3)
    # not the fraction of misclassified pixels: that is 1/4 at t = 0.1
    assert pixel_error(truth, probabilities, threshold=0.1) == 0.25
    # empty truth, empty prediction: F = 1 (no false positive, no false negative)
    assert isbi_pixel_error(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


def test_isbi_pixel_error_sums_counts_over_a_stack():
    # like Fiji over the slices of a stack: TP, FP, FN summed before the F-score
    truth = np.array([[[1, 1]], [[1, 0]]])
    probabilities = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # TP 1, FP 1, FN 2
    assert isbi_pixel_error(probabilities, truth) == pytest.approx(1 - 2 / (2 + 1 + 2))


def test_pixel_error_is_the_fraction_of_wrong_pixels():
    truth = np.array([[1, 1, 0, 0]])
    assert pixel_error(truth, np.array([[0.9, 0.2, 0.7, 0.0]])) == 0.5  # pixels 1, 2 wrong
    assert pixel_error(truth, truth) == 0.0
    # multi-class: labels 0 1 2 2 against 0 1 1 2, and against softmax-like scores
    assert pixel_error(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), n_classes=3) == 0.25
    probs = np.eye(3)[[0, 1, 1, 2]] * 0.8 + 0.05
    assert pixel_error(np.array([0, 1, 2, 2]), probs, n_classes=3) == 0.25


def test_isbi_functions_refuse_a_swapped_call():
    truth = np.array([[1, 1, 0, 0]])
    probabilities = np.array([[0.9, 0.2, 0.7, 0.0]])
    message = "truth holds values between 0 and 1: it must be a 0/1 mask. The order is " \
              "(probabilities, truth); were the arguments swapped?"
    with _raises(message):
        isbi_scores(truth, probabilities)
    with _raises(message):
        isbi_pixel_error(truth, probabilities)


def test_isbi_scores_include_the_challenge_pixel_error():
    truth = np.array([[1, 1, 0, 0]])
    probabilities = np.array([[0.9, 0.2, 0.7, 0.0]])
    assert isbi_scores(probabilities, truth)["pixel_error"] == pytest.approx(1 - 4 / 5)


def test_isbi_thresholds_are_fijis_loop():
    # for (th = 0.0; th <= 1.0; th += 0.1): 11 values, the last one just below 1
    assert len(ISBI_THRESHOLDS) == 11
    assert ISBI_THRESHOLDS[3] == 0.1 + 0.1 + 0.1 == 0.30000000000000004
    assert ISBI_THRESHOLDS[-1] == 0.9999999999999999


# ------------------------------------------------------------------ vessel maps


def test_precision_recall_f1_by_hand():
    # > 0.5: TP 2, FP 1 (0, 2), FN 1 (0, 1)
    scores = precision_recall_f1(TRUTH, PROBS)
    assert scores == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    # the field of view leaves the false positive out: TP 2, FP 0, FN 1
    fov = np.array([[1, 1, 0, 1], [1, 1, 1, 1]])
    scores = precision_recall_f1(TRUTH, PROBS, mask=fov)
    assert scores == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 4 / 5})
    assert scores["f1"] == pytest.approx(dice(TRUTH[fov == 1], PROBS[fov == 1]))


def test_precision_recall_f1_with_nothing_predicted_or_nothing_to_find():
    nothing = np.zeros((2, 2))
    # no positive predicted: no false positive (precision 1), all missed (recall 0)
    assert precision_recall_f1(np.eye(2), nothing) == {"precision": 1.0, "recall": 0.0,
                                                       "f1": 0.0}
    # nothing to find: recall 1; the false positives make precision 0
    assert precision_recall_f1(nothing, np.eye(2)) == {"precision": 0.0, "recall": 1.0,
                                                       "f1": 0.0}
    assert precision_recall_f1(nothing, nothing) == {"precision": 1.0, "recall": 1.0,
                                                     "f1": 1.0}


def _brute_force_auc(truth, scores):
    """Every (positive, negative) pair: 1 if ordered, 1/2 if tied."""
    pos, neg = scores[truth == 1], scores[truth == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (pos.size * neg.size)


def test_roc_auc_by_hand_and_against_every_pair():
    truth = np.array([0, 0, 1, 1])
    # pairs (pos, neg): (0.35, 0.1) yes, (0.35, 0.4) no, (0.8, *) yes -> 3/4
    assert roc_auc(truth, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    rng = np.random.default_rng(0)
    truth = rng.random((40, 30)) < 0.3
    scores = np.round(np.clip(truth * 0.2 + rng.random((40, 30)), 0, 1), 1)  # many ties
    assert roc_auc(truth, scores) == pytest.approx(_brute_force_auc(truth, scores), abs=1e-12)
    fov = rng.random((40, 30)) < 0.5
    assert roc_auc(truth, scores, mask=fov) == pytest.approx(
        _brute_force_auc(truth[fov], scores[fov]), abs=1e-12)
    assert roc_auc(truth, truth.astype(float)) == 1.0
    assert roc_auc(truth, 1.0 - truth) == 0.0


def test_drive_vessel_map_inside_the_field_of_view(shared_data):
    vessels = _read_mask(shared_data / "drive" / "masks" / "01.png")
    fov = _read_mask(shared_data / "drive" / "fov_masks" / "01.png")
    probabilities = np.clip(ndimage.gaussian_filter(vessels.astype(float), 2) * 1.5, 0, 1)
    inside = roc_auc(vessels, probabilities, mask=fov)
    # the dark corners outside the retina are easy negatives: they inflate the AUC
    assert 0.5 < inside < roc_auc(vessels, probabilities) < 1.0
    # exact on a random sample of pixels of the field of view, against every pair
    rng = np.random.default_rng(1)
    sample = rng.choice(np.flatnonzero(fov), 3000, replace=False)
    truth, scores = vessels.ravel()[sample], probabilities.ravel()[sample]
    assert roc_auc(truth, scores) == pytest.approx(_brute_force_auc(truth, scores), abs=1e-12)
    # the truth scored against itself inside the field of view
    assert precision_recall_f1(vessels, vessels, mask=fov) == {
        "precision": 1.0, "recall": 1.0, "f1": 1.0}


# --------------------------------------------------------- ISBI 2012: thinning


def test_flood_proposal_follows_fijis_order():
    # Fiji floods column by column (x outer, y inner), neighbours left, up, right,
    # down: of a 2-pixel membrane the first pixel joins its cell, the second meets
    # two cells and becomes the line.
    assert flood_proposal(np.array([[1, 1, 0, 0, 1, 1]])).tolist() == [[1, 1, 1, 0, 2, 2]]
    assert flood_proposal(np.array([[1, 1, 0, 0, 1, 1]]).T).ravel().tolist() == [
        1, 1, 1, 0, 2, 2]
    # 3 pixels: both sides flooded first, the middle one meets the two cells
    assert flood_proposal(np.array([[1, 0, 0, 0, 1]])).tolist() == [[1, 1, 0, 2, 2]]
    # no cell at all: the whole image is one segment
    assert flood_proposal(np.zeros((2, 3))).tolist() == [[1, 1, 1], [1, 1, 1]]


SPLIT_TRUTH = np.array([[1, 1, 1, 1, 1],
                        [1, 1, 1, 1, 1],
                        [0, 0, 0, 0, 0],
                        [1, 1, 1, 1, 1],
                        [1, 1, 1, 1, 1]])  # cells A (top, 10 px) and C (bottom, 10 px)
SPLIT_PROPOSAL = np.array([[1, 1, 1, 1, 1],
                           [1, 1, 1, 1, 1],
                           [0, 0, 0, 0, 0],
                           [1, 1, 0, 1, 1],
                           [1, 1, 0, 1, 1]])  # C split in two


def test_flood_proposal_of_a_split_cell_by_hand():
    # Order: (2,0), (2,1), then column 2: (2,2), (3,2), (4,2), then (2,3), (2,4).
    # (2,0): up S1, down S2 -> line. (2,1): left line, up S1, down S2 -> line.
    # (2,2): left line, up S1, down not flooded yet -> S1.
    # (3,2): left S2, up S1 -> line. (4,2): S2 and S3 -> line.
    # (2,3): left S1, down S3 -> line. (2,4): S1 and S3 -> line.
    assert flood_proposal(SPLIT_PROPOSAL).tolist() == [[1, 1, 1, 1, 1],
                                                       [1, 1, 1, 1, 1],
                                                       [0, 0, 1, 0, 0],
                                                       [2, 2, 0, 3, 3],
                                                       [2, 2, 0, 3, 3]]


# ----------------------------------------------------- ISBI 2012: V_rand, V_info

MERGE_TRUTH = np.array([[1, 1, 0, 1, 1],
                        [1, 1, 0, 1, 1],
                        [0, 0, 0, 0, 0],
                        [1, 1, 1, 1, 1],
                        [1, 1, 1, 1, 1]])  # cells A, B (4 px each), C (10 px): n = 18


def test_perfect_prediction_scores_one():
    for truth in (MERGE_TRUTH, SPLIT_TRUTH):
        scores = isbi_scores(truth.astype(float), truth)
        assert scores["V_rand"] == 1.0
        assert scores["V_info"] == pytest.approx(1.0, abs=1e-12)


def test_two_cells_merged_by_hand():
    proposal = MERGE_TRUTH.astype(float)
    proposal[0:2, 2] = 1.0  # no membrane between A and B: one segment S1 = A + B
    scores = isbi_scores(proposal, MERGE_TRUTH)
    # inside the cells: p(A,S1) = 4, p(B,S1) = 4, p(C,S2) = 10 (counts; n = 18)
    # V_rand = 2 sum p^2 / (sum t^2 + sum s^2) = 2 (16 + 16 + 100) / (132 + 8^2 + 10^2)
    assert scores["V_rand"] == pytest.approx(264 / 296)  # 33/37 = 0.8919
    # T refines S, so I(S; T) = H(S) and V_info = 2 H(S) / (H(T) + H(S))
    h_truth = log(18) - (4 * log(4) + 4 * log(4) + 10 * log(10)) / 18
    h_proposal = log(18) - (8 * log(8) + 10 * log(10)) / 18
    assert scores["V_info"] == pytest.approx(2 * h_proposal / (h_truth + h_proposal))  # 0.8168


def test_a_cell_split_in_two_by_hand():
    scores = isbi_scores(SPLIT_PROPOSAL.astype(float), SPLIT_TRUTH)
    # flooded proposal inside the cells (see the test above): A -> S1 (10 px);
    # C -> S2 (4 px), S3 (4 px) and 2 line pixels, each a segment of its own.
    # sum p^2 = 100 + 16 + 16 + 1 + 1 = 134; sum t^2 = 100 + 100; sum s^2 = 134
    assert scores["V_rand"] == pytest.approx(2 * 134 / (200 + 134))  # 134/167 = 0.8024
    # S refines T, so I = H(T) = log 2; H(S) = log 20 - (10 log 10 + 2 * 4 log 4) / 20
    h_proposal = log(20) - (10 * log(10) + 8 * log(4)) / 20
    assert scores["V_info"] == pytest.approx(2 * log(2) / (log(2) + h_proposal))  # 0.6991


def test_skimage_adapted_rand_error_gives_another_number():
    # Same two label images (truth cells, flooded split proposal), two definitions:
    cells, _ = ndimage.label(SPLIT_TRUTH)
    error, _, _ = adapted_rand_error(cells, flood_proposal(SPLIT_PROPOSAL))
    # skimage counts pairs of distinct pixels, n_ij (n_ij - 1), and makes the two
    # line pixels (label 0) ONE segment: sum p = 90 + 12 + 12 + 2 = 116,
    # sum t = 90 + 90 = 180, sum s = 90 + 12 + 12 + 2 = 116 -> 1 - 2*116/296 = 8/37
    assert error == pytest.approx(8 / 37)
    assert 1 - error == pytest.approx(0.7838, abs=1e-4)
    ours = isbi_scores(SPLIT_PROPOSAL, SPLIT_TRUTH)["V_rand"]
    assert ours == pytest.approx(0.8024, abs=1e-4)  # 134/167


def test_single_segment_gives_v_info_zero_as_in_fiji():
    truth = np.array([[1, 1, 0, 1, 1]])
    scores = isbi_scores(np.ones((1, 5)), truth)  # one segment: H(S) = 0
    assert scores["V_rand"] == pytest.approx(2 * 8 / (8 + 16))  # p = 2, 2; s = 4
    assert scores["V_info"] == 0.0


def test_threshold_sweep_keeps_the_best_threshold():
    proposal = MERGE_TRUTH.astype(float)
    proposal[0:2, 2] = 0.25  # the A|B membrane is seen from t = 0.3 on
    scores = isbi_scores(proposal, MERGE_TRUTH)
    expected = [33 / 37] * 3 + [1.0] * 8  # t = 0, 0.1, 0.2 merge A and B
    assert scores["V_rand_per_threshold"] == pytest.approx(expected)
    assert scores["V_rand"] == 1.0
    assert scores["V_rand_threshold"] == pytest.approx(0.3)  # the first of the best
    assert scores["V_info_threshold"] == pytest.approx(0.3)
    assert scores["thresholds"] == pytest.approx(ISBI_THRESHOLDS)
    # float32 maps too: 1.0 > 0.9999999999999999, the last threshold, in float64
    last = isbi_scores(proposal.astype(np.float32), MERGE_TRUTH)["V_rand_per_threshold"][-1]
    assert last == 1.0
    # Fiji's "binary proposal" option: one threshold
    assert isbi_scores(proposal, MERGE_TRUTH, thresholds=[0.0])["V_rand"] == pytest.approx(
        33 / 37)


def test_a_stack_averages_its_images_at_each_threshold():
    merged = MERGE_TRUTH.copy()
    merged[0:2, 2] = 1
    truth = np.stack([MERGE_TRUTH, MERGE_TRUTH])[..., None]  # (N, H, W, 1)
    scores = isbi_scores(np.stack([MERGE_TRUTH, merged]).astype(float), truth)
    assert scores["V_rand"] == pytest.approx((1.0 + 33 / 37) / 2)


# ------------------------------------------------------- ISBI 2012: real masks


def test_real_mask_against_itself_scores_one(isbi_mask):
    assert ndimage.label(isbi_mask)[1] == 136  # cells of masks/00.png
    scores = isbi_scores(isbi_mask.astype(np.float32), isbi_mask)
    assert scores["V_rand"] == 1.0
    assert scores["V_info"] == pytest.approx(1.0, abs=1e-12)
    assert isbi_pixel_error(isbi_mask, isbi_mask) == 0.0


def test_real_mask_eroded_or_dilated(isbi_mask):
    eroded = ndimage.binary_erosion(isbi_mask)
    scores = isbi_scores(eroded, isbi_mask)
    # thinner cells are regrown over the thicker membranes: nearly perfect
    assert scores["V_rand"] == pytest.approx(0.998505468, abs=1e-9)
    assert scores["V_info"] == pytest.approx(0.998228958, abs=1e-9)
    # without the thinning (skimage on the raw labels) the eroded membranes, label 0
    # of the test image, form one huge segment: a much worse score
    cells, _ = ndimage.label(isbi_mask)
    raw_error, _, _ = adapted_rand_error(cells, ndimage.label(eroded)[0])
    assert 1 - raw_error == pytest.approx(0.827871443, abs=1e-9)
    # dilated cells close the thinnest membranes: 136 cells become 125, merged
    dilated = ndimage.binary_dilation(isbi_mask)
    assert ndimage.label(dilated)[1] == 125
    scores = isbi_scores(dilated, isbi_mask)
    assert scores["V_rand"] == pytest.approx(0.971764785, abs=1e-9)
    assert scores["V_rand"] < isbi_scores(eroded, isbi_mask)["V_rand"]
    # the pixel error, 1 - F of the cell class, is 1 - Dice of the binary proposal
    assert isbi_pixel_error(eroded, isbi_mask) == pytest.approx(1 - dice(isbi_mask, eroded))


def _remove_one_membrane(mask):
    """Fill the membrane between the two cells that share the most border, and
    return the new mask and the two cells' sizes."""
    cells, n = ndimage.label(mask)
    high = ndimage.maximum_filter(cells, size=5)
    low = ndimage.minimum_filter(np.where(cells > 0, cells, n + 1), size=5)
    between = (cells == 0) & (low < high) & (high <= n)
    pairs, counts = np.unique(np.stack([low[between], high[between]]), axis=1,
                              return_counts=True)
    a, b = pairs[:, counts.argmax()]

    def near(selection):
        return ndimage.binary_dilation(selection, iterations=2)

    fill = (cells == 0) & near(cells == a) & near(cells == b)
    fill &= ~near((cells > 0) & (cells != a) & (cells != b))
    joined, _ = ndimage.label(mask | fill)
    fill &= joined == joined[cells == a][0]  # only the pixels that join a and b
    sizes = np.bincount(cells.ravel())
    return mask | fill, sizes[a], sizes[b]


def test_real_mask_with_one_membrane_removed(isbi_mask):
    merged, a, b = _remove_one_membrane(isbi_mask.astype(bool))
    assert ndimage.label(merged)[1] == 135  # exactly two cells joined
    scores = isbi_scores(merged, isbi_mask)
    # Every other cell is exact, so inside the cells sum p^2 = sum t^2 and
    # sum s^2 = sum t^2 + 2ab:  V_rand = sum t^2 / (sum t^2 + ab)
    sizes = np.bincount(ndimage.label(isbi_mask)[0].ravel())[1:].astype(np.int64)
    t2 = sizes @ sizes
    assert scores["V_rand"] == pytest.approx(t2 / (t2 + a * b), abs=1e-12)
    # V_info = 2 H(S) / (H(T) + H(S)), H(S) = H(T) - the entropy the merge removes
    n = sizes.sum()
    h_truth = log(n) - (sizes * np.log(sizes)).sum() / n
    h_merged = h_truth - ((a + b) * log(a + b) - a * log(a) - b * log(b)) / n
    assert scores["V_info"] == pytest.approx(2 * h_merged / (h_truth + h_merged), abs=1e-12)
    assert scores["V_rand"] == pytest.approx(0.999627436, abs=1e-9)


# ----------------------------------------------------------------- bad inputs


def _raises(message):
    return pytest.raises(ValueError, match="^" + re.escape(message) + "$")


def _message(call):
    with pytest.raises(ValueError) as caught:
        call()
    return str(caught.value)


def test_bad_inputs_raise_clear_errors():
    good = np.array([[0.2, 0.9]])
    with _raises("probabilities contains 1 NaN value(s)"):
        isbi_scores(np.array([[np.nan, 0.5]]), np.array([[1, 0]]))
    with _raises("prediction contains 1 NaN value(s)"):
        dice(np.array([[1, 0]]), np.array([[np.nan, 0.5]]))
    with _raises("truth and prediction must have the same shape; got (1, 2) and (1, 3)"):
        dice(np.array([[1, 0]]), np.array([[0.1, 0.2, 0.3]]))
    # the rules of what a mask is are images.as_mask's, worded as it words them
    for truth in (np.array([[255, 0]]), np.array([[255, 0]], np.uint8)):
        with _raises(_message(lambda: as_mask(truth, "truth"))):
            dice(truth, good)
    assert "pass (mask > 0)" in _message(lambda: dice(np.array([[255, 0]]), good))
    bad = np.array([[-0.5, 2.0]])
    with _raises(_message(lambda: as_prediction(bad, "prediction"))):
        precision_recall_f1(np.array([[1, 0]]), bad)
    with _raises(_message(lambda: as_mask(np.array([[0, 3, 7]]), "truth", n_classes=3))):
        dice(np.array([0, 3, 7]), np.array([0, 1, 2]), n_classes=3)
    with _raises(_message(lambda: as_prediction(np.array([[0, 1.5, 2]]), "prediction"))):
        iou(np.array([0, 1, 2]), np.array([0, 1.5, 2]), n_classes=3)
    with _raises("n_classes must be an integer >= 2; got 1"):
        dice(np.array([0, 1]), np.array([0, 1]), n_classes=1)
    with _raises("threshold must be a finite number >= 0 and <= 1; got 1.5"):
        iou(np.array([[1, 0]]), good, threshold=1.5)
    with _raises("thresholds must be a non-empty sequence of numbers in [0, 1]; got []"):
        isbi_pixel_error(good, np.array([[1, 0]]), thresholds=[])
    with _raises("mask selects no pixel: it must hold 1 inside the field of view"):
        roc_auc(np.array([[1, 0]]), good, mask=np.zeros((1, 2)))
    with _raises("the ROC needs positive and negative truth pixels; every scored pixel is "
                 "negative"):
        roc_auc(np.array([[0, 0]]), good)
    with _raises("truth holds class indices (0, 1, 2, 3) but prediction is a binary mask "
                 "(float32 in [0, 1]): score a binary prediction against binary truths and "
                 "class indices against class indices"):
        dice(np.array([0, 1, 2, 3]), np.array([0, 1, 1, 0], np.float32), n_classes=4)
    with _raises("truth holds class indices (0, 1, 2, 3): pass n_classes= to score classes"):
        iou(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 3]))
    with _raises("isbi_scores needs 2-D images: (H, W), (H, W, 1), (N, H, W) or "
                 "(N, H, W, 1); got shape (4,)"):
        isbi_scores(np.ones(4), np.array([1, 0, 1, 1]))
    with _raises("truth must be a numeric array; got dtype <U1"):
        iou(np.array([["a", "b"]]), good)
    with _raises("truth is empty (shape (0,))"):
        dice(np.array([]), np.array([]))
    with _raises("mode must be one of None, 'binary', 'multiclass', 'multilabel'; got 'x'"):
        dice(np.array([0, 1]), np.array([0, 1]), mode="x")


def test_roc_curve_matches_brute_force_and_roc_auc():
    rng = np.random.default_rng(0)
    truth = rng.random((2, 40, 30, 1)) < 0.2
    probabilities = np.round(rng.random((2, 40, 30)) * 0.6 + truth[..., 0] * 0.3, 2)  # ties
    fov = np.zeros((2, 40, 30), bool)
    fov[:, 5:35, 3:27] = True
    curve = roc_curve(truth, probabilities, mask=fov)
    t, p = truth[..., 0][fov], probabilities[fov]
    for threshold, fpr, tpr in zip(curve["thresholds"], curve["fpr"], curve["tpr"]):
        called = p >= threshold
        assert fpr == pytest.approx(np.mean(called[~t])) and tpr == pytest.approx(np.mean(called[t]))
    assert len(curve["thresholds"]) == len(np.unique(p)) + 1
    assert np.all(np.diff(curve["thresholds"]) < 0) and curve["fpr"][-1] == curve["tpr"][-1] == 1
    area = np.sum(np.diff(curve["fpr"]) * (curve["tpr"][1:] + curve["tpr"][:-1]) / 2)
    assert area == pytest.approx(roc_auc(truth, probabilities, mask=fov), abs=1e-12)
    # the package's p > 0.5 is the last point with a threshold above 0.5
    at = np.flatnonzero(curve["thresholds"] > 0.5)[-1]
    scores = precision_recall_f1(truth, probabilities, threshold=0.5, mask=fov)
    assert curve["tpr"][at] == pytest.approx(scores["recall"])


def test_roc_curve_needs_both_classes():
    with pytest.raises(ValueError, match="the ROC needs positive and negative truth pixels; "
                                         "every scored pixel is negative"):
        roc_curve(np.zeros((4, 4)), np.full((4, 4), 0.5))


# ------------------------------------------------------------- folders of masks


def _write_pngs(folder, masks):
    folder.mkdir()
    for name, mask in masks.items():
        io.imsave(folder / f"{name}.png", mask.astype(np.uint8), check_contrast=False)


def test_evaluate_folders_scores_binary_pngs_by_stem(tmp_path):
    truth = np.zeros((8, 8), np.uint8)
    truth[:4] = 255  # rows 0-3: 32 pixels
    half = np.zeros((8, 8), np.uint8)
    half[:2] = 255  # 16 of them found, none extra
    _write_pngs(tmp_path / "pred", {"a": truth, "b": half})
    _write_pngs(tmp_path / "truth", {"a": truth, "b_mask": truth})
    rows, mean = evaluate_folders(tmp_path / "pred", tmp_path / "truth")
    assert [row["name"] for row in rows] == ["a.png", "b.png"]
    assert rows[0] == {"name": "a.png", "dice": 1.0, "iou": 1.0, "pixel_error": 0.0,
                       "V_rand": 1.0}
    assert rows[1]["dice"] == pytest.approx(2 * 16 / (16 + 32))
    assert rows[1]["iou"] == pytest.approx(0.5)
    assert rows[1]["pixel_error"] == pytest.approx(16 / 64)
    assert mean["name"] == "mean" and mean["dice"] == pytest.approx((1 + 2 / 3) / 2)


def test_evaluate_folders_scores_class_indices_and_refuses_a_mix(tmp_path):
    truth = np.repeat(np.array([0, 1, 2, 2]), 2)[None].repeat(4, axis=0)
    pred = np.repeat(np.array([0, 1, 1, 2]), 2)[None].repeat(4, axis=0)
    _write_pngs(tmp_path / "pred", {"a": pred})
    _write_pngs(tmp_path / "truth", {"a": truth})
    (row,), mean = evaluate_folders(tmp_path / "pred", tmp_path / "truth")
    assert set(row) == {"name", "dice", "iou", "pixel_error"}  # no V_rand for classes
    assert row["dice"] == pytest.approx(dice(truth, pred, n_classes=3)["mean"])
    assert row["pixel_error"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="n_classes=2 makes the classes 0 and 1"):
        evaluate_folders(tmp_path / "pred", tmp_path / "truth", classes=2)
    _write_pngs(tmp_path / "binary", {"a": (truth > 0) * 255})
    with pytest.raises(ValueError, match=r"binary/a.png against .*truth/a.png: the truth holds class"):
        evaluate_folders(tmp_path / "binary", tmp_path / "truth")


# ------------------------------------------------ volumes: overlap, HD95, surface Dice


def test_dice_iou_and_pixel_error_on_volumes_by_hand():
    truth = np.zeros((4, 6, 6), np.uint8)
    truth[1:3, 1:4, 1:4] = 1  # 18 voxels
    prediction = np.zeros((4, 6, 6, 1), np.float32)
    prediction[1:3, 1:4, 1:3] = 0.9  # 12 of them, none extra
    assert dice(truth, prediction) == pytest.approx(2 * 12 / (18 + 12))
    assert iou(truth, prediction) == pytest.approx(12 / 18)
    assert pixel_error(truth, prediction) == pytest.approx(6 / 144)
    classes = truth.astype(np.int32)
    classes[3] = 2  # 36 voxels of class 2
    predicted = classes.copy()
    predicted[3, 0] = 1  # 6 of them called class 1
    scores = dice(classes, predicted, n_classes=3)
    assert scores["per_class"].tolist() == pytest.approx([1.0, 2 * 18 / (18 + 24), 2 * 30 / 66])
    probabilities = np.eye(3, dtype=np.float32)[predicted] * 0.8 + 0.05  # (D, H, W, 3)
    assert iou(classes, probabilities, n_classes=3)["per_class"].tolist() == pytest.approx(
        [1.0, 18 / 24, 30 / 36])


def _cube(offset=(0, 0, 0), shape=(9, 9, 9)):
    cube = np.zeros(shape, bool)
    cube[tuple(slice(2 + o, 5 + o) for o in offset)] = True  # 3x3x3: 26 surface voxels
    return cube


@pytest.mark.parametrize("offset, expected", [
    # Along axis 0 (5 mm): the bottom face of one cube is 5 mm from the other's (9 voxels),
    # 16 voxels of the middle and top layers lie on the other surface (0), and the centre
    # of one end layer is 1 mm from the other's ring: 16 x 0, 1 x 1, 9 x 5 on each side.
    ((1, 0, 0), {"hd95": 5.0, 0.5: 32 / 52, 1.0: 34 / 52, 4.99: 34 / 52, 5.0: 1.0}),
    # along axis 1 (1 mm): 16 x 0, 10 x 1 (9 of a face, the one centre) on each side
    ((0, 1, 0), {"hd95": 1.0, 0.5: 32 / 52, 1.0: 1.0}),
    # two slices along axis 0: a face 10 mm away (9), the middle ring 5 mm (8), 9 x 0
    ((2, 0, 0), {"hd95": 10.0, 4.9: 18 / 52, 5.0: 34 / 52, 10.0: 1.0}),
])
def test_hd95_and_surface_dice_of_offset_cubes_in_mm(offset, expected):
    truth, prediction = _cube(), _cube(offset)
    # 26 values, the 95th percentile at rank 23.75 of 25: among the largest 9
    assert hd95(truth, prediction, spacing=(5, 1, 1)) == expected.pop("hd95")
    for tolerance, share in expected.items():
        assert surface_dice(truth, prediction, tolerance=tolerance,
                            spacing=(5, 1, 1)) == pytest.approx(share)
    # symmetric, and a channel of 1 is not an axis
    assert hd95(prediction[..., None], truth, spacing=(5, 1, 1)) == hd95(
        truth, prediction, spacing=(5, 1, 1))


def test_single_voxels_three_apart():
    truth, prediction = np.zeros((7, 7)), np.zeros((7, 7))
    truth[1, 1] = prediction[4, 1] = 1  # 3 rows of 2 mm apart
    assert hd95(truth, prediction, spacing=(2.0, 1.0)) == 6.0
    assert hd95(truth, prediction) == 3.0  # 1 mm per axis by default
    assert surface_dice(truth, prediction, tolerance=5.9, spacing=(2.0, 1.0)) == 0.0
    assert surface_dice(truth, prediction, tolerance=6.0, spacing=(2.0, 1.0)) == 1.0
    truth, prediction = np.zeros((5, 5, 5)), np.zeros((5, 5, 5))
    truth[0, 0, 0] = prediction[0, 3, 4] = 1  # a 3-4-5 triangle, times the spacing 0.5
    assert hd95(truth, prediction, spacing=0.5) == 2.5


def test_the_95th_percentile_is_the_larger_directed_one_not_the_pooled_one():
    # 20 single pixels in a row against the first one: the truth's surface is 1 pixel at
    # 0 from the prediction, the prediction's 20 pixels... each is its own surface pixel
    truth, prediction = np.zeros((3, 41)), np.zeros((3, 41))
    truth[1, 0] = 1
    prediction[1, 0:40:2] = 1  # 20 pixels at 0, 2, ..., 38 from the truth's one
    directed = np.percentile(np.arange(0, 40, 2), 95)  # 36.1: prediction -> truth
    pooled = np.percentile(np.r_[np.arange(0, 40, 2), 0.0], 95)  # 36.0 with the truth's 0
    assert hd95(truth, prediction) == pytest.approx(directed) and directed != pooled
    assert surface_dice(truth, prediction, tolerance=2.0) == pytest.approx((1 + 2) / 21)


def test_empty_masks_in_hd95_and_surface_dice():
    empty, full = np.zeros((4, 5, 5)), _cube(shape=(4, 5, 5))
    assert (hd95(empty, empty), surface_dice(empty, empty)) == (0.0, 1.0)
    assert (hd95(full, empty), surface_dice(full, empty)) == (np.inf, 0.0)
    assert (hd95(empty, full), surface_dice(empty, full)) == (np.inf, 0.0)
    assert (hd95(full, full), surface_dice(full, full, tolerance=0.0)) == (0.0, 1.0)


def test_surfaces_are_face_connected_and_touch_the_array_border():
    assert SURFACE_CONNECTIVITY == 1
    square = np.ones((3, 3))  # the whole image: 8 border pixels are its surface
    inner = np.zeros((3, 3))
    inner[1, 1] = 1
    # the centre is 1 (across a face) or sqrt(2) from the border pixels: 8 x 0 against
    # (1, 1, 1, 1, 1.41 x 4) and the centre's 1
    assert hd95(square, inner) == pytest.approx(np.percentile([1] * 4 + [2 ** 0.5] * 4, 95))
    assert surface_dice(square, inner, tolerance=1.0) == pytest.approx((4 + 1) / 9)
    plus = np.zeros((5, 5))
    plus[2, 1:4] = plus[1:4, 2] = 1  # a cross: its centre has no face outside the mask
    centre = np.zeros((5, 5))
    centre[2, 2] = 1
    # the cross's surface is its 4 arms, each 1 from the centre (with 8-connected surfaces
    # the centre would be on it too, at 0 from itself)
    assert hd95(plus, centre) == 1.0 and surface_dice(plus, centre, tolerance=0.5) == 0.0


def test_multiclass_and_multilabel_are_scored_per_class_as_dice_reports_them():
    truth = np.zeros((8, 8), np.int32)
    truth[1:4, 1:4] = 1
    prediction = truth.copy()
    prediction[1:4, 4] = 1  # class 1 grows a column (2 mm): 3 of its 10 surface pixels off
    prediction[6, 6] = 2  # class 2 predicted, never true
    scores = hd95(truth, prediction, n_classes=4, spacing=(1.0, 2.0))
    assert set(scores) == {"per_class", "mean"}
    per_class = [hd95(truth == k, prediction == k, spacing=(1.0, 2.0)) for k in range(4)]
    assert scores["per_class"].tolist() == per_class
    assert per_class[1:] == [2.0, np.inf, 0.0]  # class 3: in neither, 0 as both empty
    assert scores["mean"] == np.inf
    share = surface_dice(truth, prediction, n_classes=4, tolerance=1.0, spacing=(1.0, 2.0))
    # class 1: the truth's 8 surface pixels are within 1 mm (7 at 0, the right column's middle
    # at 1 mm above or below); the prediction's 10: 7 at 0 and the new column's 3 at 2 mm
    assert share["per_class"][1:].tolist() == pytest.approx([(8 + 7) / 18, 0.0, 1.0])
    labels = np.stack([truth == 1, truth == 2], axis=-1).astype(np.float32)
    called = np.stack([prediction == 1, prediction == 2], axis=-1).astype(np.float32)
    by_label = hd95(labels, called, mode="multilabel", spacing=(1.0, 2.0))
    assert by_label["per_label"].tolist() == [2.0, np.inf]


def _brute_force(truth, prediction, spacing, tolerance):
    """HD95 and surface Dice from the surface voxels' coordinates in mm, by a k-d tree."""
    from scipy.spatial import cKDTree

    def surface(mask):  # in the mask, with a face neighbour (or the border) outside it
        padded = np.pad(mask, 1)
        core = padded[(slice(1, -1),) * mask.ndim]
        outside = np.zeros(mask.shape, bool)
        for axis in range(mask.ndim):
            for step in (-1, 1):
                outside |= ~np.roll(padded, step, axis)[(slice(1, -1),) * mask.ndim]
        return np.argwhere(core & outside) * np.asarray(spacing)

    a, b = surface(truth), surface(prediction)
    ab, ba = cKDTree(b).query(a)[0], cKDTree(a).query(b)[0]
    share = (np.sum(ab <= tolerance) + np.sum(ba <= tolerance)) / (len(ab) + len(ba))
    return max(np.percentile(ab, 95), np.percentile(ba, 95)), share


def test_hd95_and_surface_dice_match_a_brute_force_on_random_blobs():
    rng = np.random.default_rng(3)
    spacing = (3.0, 0.7, 0.9)
    for _ in range(3):
        truth, prediction = (ndimage.gaussian_filter(rng.random((10, 18, 16)), 2) > 0.5
                             for _ in range(2))
        assert truth.any() and prediction.any() and not np.array_equal(truth, prediction)
        expected = _brute_force(truth, prediction, spacing, 2.0)
        assert hd95(truth, prediction, spacing=spacing) == pytest.approx(expected[0], abs=1e-9)
        assert surface_dice(truth, prediction, tolerance=2.0, spacing=spacing) == (
            pytest.approx(expected[1], abs=1e-12))


def test_surface_scores_refuse_bad_arguments():
    cube = _cube(shape=(4, 6, 6))
    with _raises("spacing must be 3 numbers (mm), one per axis of the (4, 6, 6) masks; got "
                 "(1, 1)"):
        hd95(cube, cube, spacing=(1, 1))
    with _raises("spacing must be a finite number > 0; got 0"):
        surface_dice(cube, cube, spacing=(5, 1, 0))
    with _raises("tolerance must be a finite number >= 0; got -1"):
        surface_dice(cube, cube, tolerance=-1)
    with _raises("surface distances need 2-D or 3-D masks, (H, W) or (D, H, W) with an "
                 "optional channel of 1; got shape (5,)"):
        hd95(np.ones(5), np.ones(5))
    with _raises("truth and prediction must have the same shape; got (4, 6, 6) and (4, 6, 5)"):
        hd95(cube, cube[..., :5])


def test_real_tumour_shifted_by_one_slice(shared_data):
    import nibabel

    label = nibabel.load(shared_data / "tumour_volumes" / "lung1_label.nii.gz")
    spacing = tuple(float(z) for z in label.header.get_zooms()[::-1])  # per array axis
    assert spacing == (5.0, 0.5703125, 0.5703125)
    volume = np.transpose(np.asanyarray(label.dataobj), (2, 1, 0))
    truth = volume[30:37, 345:375, 204:232] > 0  # the tumour's box (slices 32-34) and a margin
    assert truth.sum() == volume.sum() == 837
    shifted = np.roll(truth, 1, axis=0)
    # The shifted top slice (329 voxels, all surface) lies 5 mm above the truth's top slice
    # and farther from every other truth voxel: 329 of the shifted surface's 695 voxels
    # are 5.0 mm off, far more than 5 %, and no voxel is farther: HD95 = the slice spacing.
    assert hd95(truth, shifted, spacing=spacing) == 5.0
    assert surface_dice(truth, shifted, tolerance=5.0, spacing=spacing) == 1.0
    for tolerance in (0.5, 1.0, 4.99):
        assert surface_dice(truth, shifted, tolerance=tolerance, spacing=spacing) == (
            pytest.approx(_brute_force(truth, shifted, spacing, tolerance)[1], abs=1e-12))
    assert surface_dice(truth, shifted, tolerance=1.0, spacing=spacing) == pytest.approx(
        540 / 1390)


# ------------------------------------------------------------ folders of volumes


def _write_volumes(folder, volumes, zooms=(0.75, 0.5, 3.0)):
    """NIfTI files of (D, H, W) arrays, voxel sizes ``zooms`` along (i, j, k) = (W, H, D)."""
    import nibabel

    folder.mkdir()
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = (-40.0, 12.5, 7.0)  # an origin somewhere: the spacing is what counts
    for name, volume in volumes.items():
        data = np.transpose(volume, (2, 1, 0))
        data = data.astype(np.uint8) if data.dtype == bool else data
        nibabel.Nifti1Image(data, affine).to_filename(folder / f"{name}.nii.gz")


def test_evaluate_folders_scores_volumes_in_the_truths_spacing(tmp_path):
    cube = _cube(shape=(8, 8, 8)).astype(np.uint8)
    shifted = np.roll(cube, 1, axis=0)  # one slice of 3 mm
    _write_volumes(tmp_path / "pred", {"a": cube, "b": shifted})
    _write_volumes(tmp_path / "truth", {"a": cube * 255, "b_mask": cube})  # 0/255: binary too
    rows, mean = evaluate_folders(tmp_path / "pred", tmp_path / "truth")
    assert rows[0] == {"name": "a.nii.gz", "dice": 1.0, "iou": 1.0, "hd95": 0.0,
                       "surface_dice": 1.0}
    # spacing (3.0, 0.5, 0.75) per array axis: 16 x 0, the end layer's centre 0.5 mm (axis 1)
    # from the other's ring and a face of 9 voxels 3 mm off, on each of the two surfaces
    assert rows[1] == {"name": "b.nii.gz", "dice": pytest.approx(2 * 18 / 54), "iou": 0.5,
                       "hd95": 3.0, "surface_dice": pytest.approx(34 / 52)}
    assert mean == {"name": "mean", "dice": pytest.approx(5 / 6), "iou": 0.75, "hd95": 1.5,
                    "surface_dice": pytest.approx((1 + 34 / 52) / 2)}
    rows, _ = evaluate_folders(tmp_path / "pred", tmp_path / "truth", tolerance=0.4)
    assert rows[1]["surface_dice"] == pytest.approx(32 / 52)
    rows, _ = evaluate_folders(tmp_path / "pred", tmp_path / "truth", tolerance=3.0)
    assert rows[1]["surface_dice"] == 1.0


def test_evaluate_folders_scores_class_volumes_per_class(tmp_path):
    truth = _cube(shape=(8, 8, 8)).astype(np.uint8)
    truth[6:, 5:, 5:] = 2
    prediction = truth.copy()
    prediction[6:, 5:, 4] = 2  # class 2 grows by a column
    _write_volumes(tmp_path / "pred", {"a": prediction})
    _write_volumes(tmp_path / "truth", {"a": truth})
    (row,), _ = evaluate_folders(tmp_path / "pred", tmp_path / "truth")
    spacing = (3.0, 0.5, 0.75)
    assert row["hd95"] == hd95(truth, prediction, n_classes=3, spacing=spacing)["mean"]
    assert row["surface_dice"] == surface_dice(truth, prediction, n_classes=3,
                                               spacing=spacing)["mean"]
    assert row["dice"] == dice(truth, prediction, n_classes=3)["mean"]
    assert hd95(truth, prediction, n_classes=3, spacing=spacing)["per_class"][2] == 0.75


def test_evaluate_folders_scores_probability_volumes_at_one_half(tmp_path):
    cube = _cube(shape=(8, 8, 8))
    probabilities = np.where(np.roll(cube, 1, axis=0), 0.9, 0.2).astype(np.float32)
    _write_volumes(tmp_path / "pred", {"a": probabilities})
    _write_volumes(tmp_path / "truth", {"a": cube})
    (row,), _ = evaluate_folders(tmp_path / "pred", tmp_path / "truth")
    assert row == {"name": "a.nii.gz", "dice": pytest.approx(2 / 3), "iou": 0.5, "hd95": 3.0,
                   "surface_dice": pytest.approx(34 / 52)}  # as the 0/1 volume "b" above


def test_evaluate_folders_refuses_mixed_kinds_and_grids(tmp_path):
    cube = _cube(shape=(6, 6, 6))
    _write_volumes(tmp_path / "pred", {"a": cube}, zooms=(1.0, 1.0, 1.0))
    _write_volumes(tmp_path / "truth", {"a": cube})
    with pytest.raises(ValueError, match=r"pred/a.nii.gz against .*truth/a.nii.gz: the spacing "
                                         r"differs: \(1.0, 1.0, 1.0\) and \(3.0, 0.5, 0.75\) mm$"):
        evaluate_folders(tmp_path / "pred", tmp_path / "truth")
    _write_pngs(tmp_path / "flat", {"a": cube[0] * 255})
    with pytest.raises(ValueError, match=r"the folders mix volumes and 2D masks: .*truth/a.nii.gz"
                                         r" is a volume, .*flat/a.png a 2D mask; keep one kind"):
        evaluate_folders(tmp_path / "flat", tmp_path / "truth")
    with _raises("tolerance must be a finite number >= 0; got -1"):
        evaluate_folders(tmp_path / "pred", tmp_path / "truth", tolerance=-1)


def test_evaluate_folders_on_a_real_tumour_shifted_by_one_slice(shared_data, tmp_path):
    import nibabel

    label = nibabel.load(shared_data / "tumour_volumes" / "lung1_label.nii.gz")
    box = np.asanyarray(label.dataobj)[204:232, 345:375, 30:37]  # (i, j, k): the tumour's box
    for name, data in (("truth", box), ("pred", np.roll(box, 1, axis=2))):  # one k slice on
        (tmp_path / name).mkdir()
        nibabel.Nifti1Image(data, label.affine).to_filename(tmp_path / name / "lung1.nii.gz")
    (row,), _ = evaluate_folders(tmp_path / "pred", tmp_path / "truth")
    truth = np.transpose(box, (2, 1, 0))
    assert row["dice"] == dice(truth, np.roll(truth, 1, axis=0))
    # as in test_real_tumour_shifted_by_one_slice: the slice spacing, 5 mm, read from the file
    assert row["hd95"] == 5.0
    assert row["surface_dice"] == pytest.approx(540 / 1390)
