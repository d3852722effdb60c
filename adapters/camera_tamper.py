"""Camera tamper analysis (EXAM-2.7.10): covered, defocused, moved, frozen.

Pure functions on frames (numpy arrays, BGR or grey) plus `TamperDetector`, one small state
object per camera that learns the camera's own healthy view and debounces. Everything works on
a downscaled grey picture (`ANALYSIS_WIDTH` wide, `FINE_WIDTH` for sharpness), so one core
analyses hundreds of snapshots a second. Measures are chosen to survive lighting: texture is
judged against the learned view cell by cell, sharpness is a ratio of fine to coarse detail
(gain cancels), edges are the strongest few percent of gradients (gain cancels again).

A frame the analysis cannot judge (smaller than `MIN_SIDE` on a side, over `MAX_PIXELS`,
sides beyond `MAX_ASPECT`:1, not 2-D grey or 1/3/4 channels, pixels neither uint8 nor uint16)
raises `BadFrame` with the reason, and nothing else: `check_frame` is the one gate, and the
detector's state is left untouched.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

TAMPERS = ("covered", "defocused", "moved", "frozen")
ANALYSIS_WIDTH = 160  # coverage, edges, freeze: 160x90 for 16:9
FINE_WIDTH = 320  # sharpness needs finer detail than the rest
CELL = 10  # texture cells of 10x10 analysis pixels (16x9 cells at 16:9)
MIN_SIDE = 16  # a smaller picture has no texture cells, edges or features to judge
MAX_PIXELS = 50_000_000  # more than any camera sends (8K is 33 Mpx); beyond: garbage
MAX_ASPECT = 16  # panoramic 32:9 is 3.6:1; a 16:1 strip is no camera view


class BadFrame(ValueError):
    """A frame the analysis cannot judge; the message says why."""


def size_problem(width: int, height: int) -> str | None:
    """Why a picture of this size cannot be judged, or None."""
    if height < MIN_SIDE or width < MIN_SIDE:
        return f"picture {width}x{height} is too small to judge (at least {MIN_SIDE}x{MIN_SIDE})"
    if max(height, width) > MAX_ASPECT * min(height, width):
        return f"picture {width}x{height} is no camera view (sides over {MAX_ASPECT}:1)"
    if height * width > MAX_PIXELS:
        return f"picture {width}x{height} is over {MAX_PIXELS // 1_000_000} Mpx"
    return None


def check_frame(frame: Any) -> np.ndarray:
    """`frame` as a contiguous grey uint8 picture, or BadFrame saying why it cannot be one."""
    if not isinstance(frame, np.ndarray):
        raise BadFrame(f"not a picture: {type(frame).__name__}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise BadFrame(f"not a grey, BGR or BGRA picture: array of shape {frame.shape}")
    problem = size_problem(frame.shape[1], frame.shape[0])
    if problem:
        raise BadFrame(problem)
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    elif frame.dtype != np.uint8:
        raise BadFrame(f"pixels of type {frame.dtype} (uint8 or uint16 expected)")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[..., 0]
    return to_gray(np.ascontiguousarray(frame))


@dataclass(frozen=True, slots=True)
class TamperConfig:
    """Thresholds and timing; the defaults fit a snapshot every 0.5–2 s."""

    confirm_s: float = 5.0  # a tamper must persist this long (a passer-by takes 1–2 s) ...
    confirm_samples: int = 3  # ... and over at least this many samples
    clear_s: float = 2.0  # healthy this long before a tamper clears
    clear_samples: int = 2
    gap_samples: int = 1  # clean samples a tamper run may contain (a borderline verdict)
    learn_samples: int = 3  # healthy frames before the view is trusted
    relearn_alpha: float = 0.02  # per healthy sample: follows lighting drift and day/night
    relearn_overlap: float = 0.7  # ... but only from samples that clearly show the same view
    relearn_covered: float = 0.25
    dark_level: float = 18.0  # mean grey below this with no texture: lens covered / black
    blank_std: float = 3.0  # a texture cell is blank below this std (grey levels) ...
    blank_ratio: float = 0.25  # ... or below this fraction of its learned std
    blank_edge: float = 12.0  # ... and its strongest coarse edge is below this (Sobel units)
    textured_std: float = 6.0  # cells of the learned view that count as having texture
    covered_fraction: float = 0.45  # share of textured cells gone blank: covered
    defocus_ratio: float = 0.5  # sharpness below this share of the learned sharpness
    moved_overlap: float = 0.7  # learned edges still found below this share: maybe moved,
    moved_px: float = 8.0  # ... if the features agree the view shifted this far (of 320)
    moved_inliers: int = 8
    moved_overlap_alone: float = 0.4  # ... or, with too few features to tell, this low
    frozen_diff: float = 0.02  # mean |difference| of consecutive samples: identical


# -- pure measures on one frame ----------------------------------------------------------


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Grey uint8 from BGR, BGRA or grey."""
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def downscale(gray: np.ndarray, width: int) -> np.ndarray:
    """Area-averaged resize to `width`, keeping the aspect ratio (never upscales)."""
    h, w = gray.shape[:2]
    if w <= width:
        return gray
    height = max(CELL, round(h * width / w))
    return cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)


def cell_std(gray: np.ndarray, cell: int = CELL) -> np.ndarray:
    """Standard deviation of each `cell`×`cell` block: where the picture has texture."""
    h, w = gray.shape
    g = gray[: h - h % cell, : w - w % cell].astype(np.float32)
    size = (g.shape[1] // cell, g.shape[0] // cell)
    # Block means of g and g² by area resize: much faster than numpy's std over axes.
    mean = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
    mean_sq = cv2.resize(g * g, size, interpolation=cv2.INTER_AREA)
    return np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))


def _gradient(gray: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def quantile(values: np.ndarray, q: float, bins: int = 1024) -> float:
    """Approximate quantile of non-negative float32 values (a histogram: ~10x np.quantile)."""
    if values.size > 20_000:
        values = np.ascontiguousarray(values[::2, ::2])  # a quarter of the pixels is plenty
    top = float(values.max())
    if top <= 0:
        return 0.0
    hist = cv2.calcHist([values], [0], None, [bins], [0, top * (1 + 1e-6)]).ravel()
    cum = np.cumsum(hist)
    i = int(np.searchsorted(cum, q * cum[-1]))
    return (i + 1) * top / bins


def cell_max(values: np.ndarray, cell: int) -> np.ndarray:
    """Largest value of each `cell`×`cell` block."""
    h, w = values.shape
    v = values[: h - h % cell, : w - w % cell]
    out: np.ndarray = v.reshape(h // cell, cell, w // cell, cell).max(axis=(1, 3))
    return out


def sharpness(fine: np.ndarray) -> float:
    """Strong gradients at full scale over strong gradients at quarter scale.

    A gain on the picture scales both and cancels; defocus flattens the full-scale edges long
    before the quarter-scale ones. A high quantile rather than the mean, and a light 3x3 blur,
    keep sensor noise (which defocus does not remove: it is added after the lens) out of it.
    """
    g = fine.astype(np.float32)
    full = _gradient(cv2.GaussianBlur(g, (3, 3), 0))
    quarter = _gradient(cv2.pyrDown(cv2.pyrDown(g)))
    return quantile(full, 0.95) / (quantile(quarter, 0.95) + 1e-3)


def edge_map(gray: np.ndarray, top: float = 0.12, floor: float = 8.0) -> np.ndarray:
    """The strongest `top` share of gradients (and above `floor`): the scene's structure."""
    mag = _gradient(gray.astype(np.float32))
    thresh = max(floor, quantile(mag, 1.0 - top))
    return mag > thresh


def edge_overlap(ref_edges: np.ndarray, edges: np.ndarray) -> float:
    """Share of the learned edges found again (within one analysis pixel) in `edges`."""
    n = int(ref_edges.sum())
    if n == 0:
        return 1.0
    near = cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return float((ref_edges & near).sum() / n)


_ORB = cv2.ORB_create(  # type: ignore[attr-defined]
    nfeatures=200, fastThreshold=10, edgeThreshold=15, patchSize=15
)
_MATCHER = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
Features = tuple[np.ndarray, np.ndarray]  # keypoint positions (n, 2), descriptors


def features(gray: np.ndarray) -> Features | None:
    """ORB keypoints of a grey picture, or None when it has too few to match."""
    kps, desc = _ORB.detectAndCompute(gray, None)
    if desc is None or len(kps) < 8:
        return None
    return np.array([k.pt for k in kps], dtype=np.float32), desc


def view_shift(ref: Features, cur: Features) -> tuple[float, int] | None:
    """How far the view moved: (largest corner displacement in pixels, inliers), or None.

    A similarity transform (shift, rotation, zoom) fitted with RANSAC to ORB matches. People
    in the picture do not move coherently, so in a crowd the room's own features still agree
    on "no movement", where the cheap edge test alone would see a changed picture.
    """
    matches = _MATCHER.match(ref[1], cur[1])
    if len(matches) < 8:
        return None
    p1 = ref[0][[m.queryIdx for m in matches]]
    p2 = cur[0][[m.trainIdx for m in matches]]
    transform, inliers = cv2.estimateAffinePartial2D(p1, p2, ransacReprojThreshold=3.0)
    if transform is None:
        return None
    corners = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32) * (p1.max(axis=0) + 1)
    moved = corners @ transform[:, :2].T + transform[:, 2] - corners
    return float(np.abs(moved).max()), int(inliers.sum())


def frame_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute grey difference; 0 for identical frames."""
    if a.shape != b.shape:
        return 255.0
    return float(cv2.absdiff(a, b).mean())


@dataclass(frozen=True, slots=True)
class Measures:
    """What one sample looked like; `raw` is its undebounced verdict."""

    mean: float
    covered_fraction: float
    sharpness: float
    sharpness_ratio: float
    edge_overlap: float
    difference: float
    raw: str | None


# -- the per-camera state ----------------------------------------------------------------


class TamperDetector:
    """Learns one camera's healthy view and reports a tamper once it persists.

    `update(frame, t)` takes a frame and its time in seconds (any monotonic clock) and returns
    the debounced tamper: None or one of TAMPERS. While healthy it keeps re-learning slowly,
    so lighting drift and day/night switches become part of the view.
    """

    def __init__(self, config: TamperConfig | None = None) -> None:
        self.config = config or TamperConfig()
        self.tamper: str | None = None
        self.last: Measures | None = None
        self._ref: np.ndarray | None = None  # learned grey view (float32, analysis size)
        self._ref_cells: np.ndarray | None = None
        self._ref_outline: np.ndarray | None = None
        self._ref_edges: np.ndarray | None = None
        self._ref_sharpness = 0.0
        self._ref_features: Features | None = None
        self._ref_features_at = -1  # learn count when they were computed
        self._learned = 0
        self._prev: np.ndarray | None = None
        self._run_start: float | None = None  # current run of tampered (or clean) samples
        self._run: Counter[str] = Counter()
        self._clean_start: float | None = None
        self._clean_count = 0

    @property
    def learning(self) -> bool:
        return self._learned < self.config.learn_samples

    def relearn(self) -> None:
        """Forget the learned view (after a deliberate change: camera re-aimed, refocused)."""
        self.__init__(self.config)  # type: ignore[misc]

    def measure(self, frame: np.ndarray) -> Measures:
        """Measure a frame against the learned view without changing any state.

        BadFrame if the frame cannot be judged."""
        return self._measure(*self._prepare(frame))[0]

    def update(self, frame: np.ndarray, t: float) -> str | None:
        """Judge one frame taken at `t`; BadFrame (state unchanged) if it cannot be judged."""
        coarse, fine = self._prepare(frame)
        m, cells, edges, sharp = self._measure(coarse, fine)
        self.last = m
        self._prev = coarse
        self._debounce(m.raw, t)
        cfg = self.config
        clearly_same = (
            m.edge_overlap >= cfg.relearn_overlap and m.covered_fraction <= cfg.relearn_covered
        )
        if m.raw is None and self.tamper is None and (self.learning or clearly_same):
            self._learn(coarse, cells, edges, sharp)
        return self.tamper

    # -- internals --

    def _prepare(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fine = downscale(check_frame(frame), FINE_WIDTH)
        return downscale(fine, ANALYSIS_WIDTH), fine

    def _measure(
        self, coarse: np.ndarray, fine: np.ndarray
    ) -> tuple[Measures, tuple[np.ndarray, np.ndarray], np.ndarray, float]:
        cfg = self.config
        if self._ref is not None and self._ref.shape != coarse.shape:
            self.relearn()  # the camera changed resolution or aspect: a new view
        cells = cell_std(coarse)
        # Edges at a scale defocus barely touches, so a blurred lens does not look covered.
        outline = cell_max(_gradient(cv2.pyrDown(coarse).astype(np.float32)), CELL // 2)
        # An odd height or width can give the half-size picture one block more: align them.
        outline = outline[: cells.shape[0], : cells.shape[1]]
        mean = float(coarse.mean())
        sharp = sharpness(fine)
        edges = edge_map(coarse)
        diff = 255.0 if self._prev is None else frame_difference(self._prev, coarse)

        if self._ref_cells is not None:
            textured = self._ref_cells >= cfg.textured_std
            blank = cells < np.maximum(cfg.blank_std, cfg.blank_ratio * self._ref_cells)
            assert self._ref_outline is not None
            blank &= outline < np.maximum(cfg.blank_edge, cfg.blank_ratio * self._ref_outline)
            n = int(textured.sum())
            # Texture lost minus texture gained: a moved camera loses some and finds new, a
            # cover only takes away.
            gained = int((~textured & (cells >= cfg.textured_std)).sum())
            covered = float(((blank & textured).sum() - gained) / n) if n else float(blank.mean())
        else:  # nothing learned yet: only a picture with no texture at all is covered
            covered = float((cells < cfg.blank_std).mean() >= 0.9)
        ratio = sharp / self._ref_sharpness if self._ref_sharpness > 0 else 1.0
        overlap = edge_overlap(self._ref_edges, edges) if self._ref_edges is not None else 1.0

        raw: str | None = None
        if covered >= cfg.covered_fraction or (mean < cfg.dark_level and covered >= 0.3):
            raw = "covered"
        elif diff <= cfg.frozen_diff:
            raw = "frozen"
        elif not self.learning:
            if ratio < cfg.defocus_ratio:
                raw = "defocused"
            elif overlap < cfg.moved_overlap and self._view_moved(fine, overlap):
                raw = "moved"
        m = Measures(mean, covered, sharp, ratio, overlap, diff, raw)
        return m, (cells, outline), edges, sharp

    def _view_moved(self, fine: np.ndarray, overlap: float) -> bool:
        """Confirm a low edge overlap with feature matching (costly: only when suspicious)."""
        cfg = self.config
        assert self._ref is not None
        if self._ref_features is None or self._learned - self._ref_features_at >= 10:
            ref = cv2.resize(
                np.clip(self._ref, 0, 255).astype(np.uint8),
                (fine.shape[1], fine.shape[0]),
                interpolation=cv2.INTER_LINEAR,
            )
            self._ref_features = features(ref)
            self._ref_features_at = self._learned
        cur = features(fine)
        shift = view_shift(self._ref_features, cur) if self._ref_features and cur else None
        if shift is None or shift[1] < cfg.moved_inliers:
            return bool(overlap < cfg.moved_overlap_alone)
        return bool(shift[0] * FINE_WIDTH / fine.shape[1] >= cfg.moved_px)

    def _learn(
        self,
        coarse: np.ndarray,
        texture: tuple[np.ndarray, np.ndarray],
        edges: np.ndarray,
        sharp: float,
    ) -> None:
        cells, outline = texture
        g = coarse.astype(np.float32)
        if self._ref is None or self.learning:
            # While learning, average the first frames equally; then follow slowly.
            a = 1.0 / (self._learned + 1)
        else:
            a = self.config.relearn_alpha
        if self._ref is None:
            self._ref, self._ref_cells, self._ref_sharpness = g, cells, sharp
            self._ref_outline = outline
        else:
            assert self._ref_cells is not None and self._ref_outline is not None
            self._ref = cv2.addWeighted(self._ref, 1 - a, g, a, 0)
            self._ref_outline = self._ref_outline * (1 - a) + outline * a
            self._ref_cells = self._ref_cells * (1 - a) + cells * a
            self._ref_sharpness = self._ref_sharpness * (1 - a) + sharp * a
        # Edges of the averaged view: people passing blur out of it, the room stays. It
        # changes slowly once learned, so its edges are refreshed every few samples.
        if self._ref_edges is None or self.learning or self._learned % 5 == 0:
            self._ref_edges = edge_map(self._ref)
        self._learned += 1

    def _debounce(self, raw: str | None, t: float) -> None:
        cfg = self.config
        if raw is not None:
            self._clean_start, self._clean_count = None, 0
            if self._run_start is None:
                self._run_start, self._run = t, Counter()
            self._run[raw] += 1
            n = sum(self._run.values())
            if t - self._run_start >= cfg.confirm_s and n >= cfg.confirm_samples:
                # The most frequent verdict of the run names it: a partly covered lens may
                # flicker between covered and moved, the hand is still the cause.
                self.tamper = self._run.most_common(1)[0][0]
        else:
            if self._clean_start is None:
                self._clean_start = t
            self._clean_count += 1
            if self._clean_count > cfg.gap_samples:
                self._run_start, self._run = None, Counter()
            if self.tamper is None:
                return
            if t - self._clean_start >= cfg.clear_s and self._clean_count >= cfg.clear_samples:
                self.tamper = None
