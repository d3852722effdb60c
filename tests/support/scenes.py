"""Synthetic, labelled camera scenes for the tamper detector and the MJPEG test server.

Independent of simulators/ on purpose: the camera simulator is written by someone else from
the contract, and these clips are the detector's own labelled test set. A clip is a seeded
series of (time, JPEG-decoded BGR frame) samples: a few healthy frames to learn from, then an
effect. Tamper clips carry the tamper the detector must report; hard negatives (lighting
changes, day/night, something passing close to the lens, a crowd) carry `None` and must never
alarm. Frames go through a real JPEG round trip and carry sensor noise, like a camera's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

TAMPER_KINDS = ("covered", "partially_covered", "defocused", "moved", "frozen")
NEGATIVE_KINDS = ("normal", "light_gradual", "lamp_switch", "day_night", "lens_pass", "crowd")
# What the detector must report for each clip kind (None: it must stay silent).
EXPECTED: dict[str, str | None] = {
    "covered": "covered",
    "partially_covered": "covered",
    "defocused": "defocused",
    "moved": "moved",
    "frozen": "frozen",
    **{k: None for k in NEGATIVE_KINDS},
}


@dataclass
class Person:
    """Someone (or a trolley) crossing the room: a textured body and a head."""

    x: float
    y: float
    vx: float
    vy: float
    scale: float
    colour: tuple[int, int, int]
    stripes: int

    def draw(self, img: np.ndarray, t: float) -> None:
        w = img.shape[1]
        cx = int((self.x + self.vx * t) % (w + 80)) - 40
        cy = int(self.y + self.vy * t)
        s = self.scale
        bw, bh = int(14 * s), int(34 * s)
        top = cy - bh
        cv2.rectangle(img, (cx - bw, top), (cx + bw, cy + bh), self.colour, -1)
        for k in range(self.stripes):  # clothes have texture too
            yy = top + (k + 1) * (2 * bh) // (self.stripes + 1)
            cv2.line(img, (cx - bw, yy), (cx + bw, yy), (30, 30, 30), max(1, int(s)))
        cv2.circle(img, (cx, top - int(9 * s)), int(9 * s), (120, 150, 190), -1)


def render_room(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A textured room: shaded walls, floor tiles, furniture, shelves, posters, a window."""
    img = np.empty((h, w, 3), np.uint8)
    wall = rng.integers(110, 200, 3)
    floor_y = int(h * rng.uniform(0.55, 0.7))
    shade = np.linspace(0.8, 1.1, w)[None, :, None]
    img[:floor_y] = np.clip(wall[None, None, :] * shade, 0, 255).astype(np.uint8)
    floor = rng.integers(60, 140, 3)
    img[floor_y:] = floor
    tile = int(rng.integers(12, 24))
    for x in range(0, w, tile):
        cv2.line(img, (x, floor_y), (int(w / 2 + (x - w / 2) * 1.6), h), (40, 40, 40), 1)
    for y in range(floor_y, h, tile // 2):
        cv2.line(img, (0, y), (w, y), (45, 45, 45), 1)
    for _ in range(int(rng.integers(5, 9))):  # furniture and cabinets
        x0 = int(rng.integers(0, w - 20))
        y0 = int(rng.integers(h // 6, floor_y))
        x1 = min(w - 1, x0 + int(rng.integers(w // 12, w // 4)))
        y1 = min(h - 1, y0 + int(rng.integers(h // 10, h // 3)))
        c = tuple(int(v) for v in rng.integers(20, 235, 3))
        cv2.rectangle(img, (x0, y0), (x1, y1), c, -1)
        cv2.rectangle(img, (x0, y0), (x1, y1), (20, 20, 20), 1)
        if rng.random() < 0.6:  # shelves with books
            step = int(rng.integers(4, 8))
            for x in range(x0 + 2, x1 - 2, step):
                bc = tuple(int(v) for v in rng.integers(0, 255, 3))
                cv2.rectangle(img, (x, y0 + 3), (x + step - 2, (y0 + y1) // 2), bc, -1)
    for _ in range(int(rng.integers(2, 4))):  # posters: fine texture for the sharpness test
        pw, ph = int(rng.integers(w // 12, w // 6)), int(rng.integers(h // 10, h // 5))
        x0, y0 = int(rng.integers(0, w - pw)), int(rng.integers(0, max(1, floor_y - ph)))
        patch: np.ndarray = rng.integers(0, 255, (ph // 2 + 1, pw // 2 + 1, 3), dtype=np.uint8)
        patch = cv2.resize(patch, (pw, ph), interpolation=cv2.INTER_NEAREST)
        img[y0 : y0 + ph, x0 : x0 + pw] = patch
    if rng.random() < 0.7:  # a window with bars
        x0, y0 = int(rng.integers(0, w - w // 5)), int(rng.integers(0, h // 6))
        x1, y1 = x0 + w // 5, y0 + h // 4
        cv2.rectangle(img, (x0, y0), (x1, y1), (235, 225, 210), -1)
        for x in range(x0, x1, max(3, w // 40)):
            cv2.line(img, (x, y0), (x, y1), (60, 60, 60), 1)
    for _ in range(int(rng.integers(3, 7))):  # cables, edges, pictures
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p0, p1, tuple(int(v) for v in rng.integers(0, 255, 3)), 1)
    return img


def random_people(
    rng: np.random.Generator, w: int, h: int, n: int, scale: tuple[float, float] = (0.8, 1.6)
) -> list[Person]:
    out = []
    for _ in range(n):
        s = float(rng.uniform(*scale)) * h / 180
        out.append(
            Person(
                x=float(rng.uniform(0, w)),
                y=float(rng.uniform(h * 0.5, h * 0.8)),
                vx=float(rng.choice([-1, 1]) * rng.uniform(5, 25)) * w / 320,
                vy=float(rng.uniform(-2, 2)),
                scale=s,
                colour=tuple(int(v) for v in rng.integers(20, 230, 3)),  # type: ignore[arg-type]
                stripes=int(rng.integers(0, 5)),
            )
        )
    return out


_GRAIN: dict[tuple[int, int], np.ndarray] = {}


def _grain_bank(h: int, w: int) -> np.ndarray:
    """Unit Gaussian noise twice the frame size; frames take random windows of it (fast)."""
    if (h, w) not in _GRAIN:
        _GRAIN[(h, w)] = (
            np.random.default_rng(h * 10007 + w)
            .standard_normal((2 * h, 2 * w, 3))
            .astype(np.float32)
        )
    return _GRAIN[(h, w)]


def camera_finish(
    img: np.ndarray, rng: np.random.Generator, noise: float = 2.0, quality: int = 85
) -> tuple[np.ndarray, bytes]:
    """Sensor noise and a JPEG round trip; returns the decoded frame and its JPEG bytes."""
    h, w = img.shape[:2]
    bank = _grain_bank(h, w)
    y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
    grain = bank[y : y + h, x : x + w, : img.shape[2] if img.ndim == 3 else 1]
    out = cv2.scaleAdd(grain, noise, img.astype(np.float32).reshape(grain.shape))
    out = np.clip(out, 0, 255).astype(np.uint8).reshape(img.shape)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    data = buf.tobytes()
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert decoded is not None
    return decoded, data


def apply_gain(img: np.ndarray, gain: float, offset: float = 0.0) -> np.ndarray:
    return (img.astype(np.float32) * gain + offset).clip(0, 255).astype(np.uint8)


def night(img: np.ndarray) -> np.ndarray:
    """The IR-cut filter drops: a grey picture, lower contrast, lit from the camera."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w]
    vignette = 1.0 - 0.5 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)
    lit: np.ndarray = (g * 0.7 + 20) * vignette
    return cv2.cvtColor(lit.clip(0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def cover(img: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """A hand, cloth or tape over `fraction` of the picture: smooth, out of focus, dark-ish."""
    h, w = img.shape[:2]
    out = img.copy()
    colour = rng.integers(0, 120, 3).astype(np.float32)
    side = int(rng.integers(4))
    mask: np.ndarray = np.zeros((h, w), np.float32)
    if fraction >= 0.999:
        mask[:] = 1
    elif side == 0:
        mask[:, : int(w * fraction)] = 1
    elif side == 1:
        mask[:, w - int(w * fraction) :] = 1
    elif side == 2:
        mask[: int(h * fraction)] = 1
    else:
        mask[h - int(h * fraction) :] = 1
    k = max(3, (w // 20) | 1)
    mask = cv2.GaussianBlur(mask, (k, k), 0)  # a lens-close object has a soft edge
    yy = np.linspace(0.85, 1.15, h, dtype=np.float32)[:, None, None]
    blob = np.broadcast_to(colour[None, None, :] * yy, img.shape)
    out = img.astype(np.float32) * (1 - mask[..., None]) + blob * mask[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def move_view(
    canvas: np.ndarray, w: int, h: int, m: int, dx: float, dy: float, angle: float
) -> np.ndarray:
    """The camera's view of `canvas` (which has margin m) shifted by (dx, dy), rotated."""
    cx, cy = m + w / 2 + dx, m + h / 2 + dy
    rot = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    rot[0, 2] -= cx - w / 2
    rot[1, 2] -= cy - h / 2
    return cv2.warpAffine(canvas, rot, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@dataclass
class Clip:
    kind: str
    seed: int
    expected: str | None
    learn: int  # how many leading samples are healthy
    samples: list[tuple[float, np.ndarray]] = field(default_factory=list)


class Scene:
    """One camera's room with people; renders frames with tamper effects applied on demand."""

    def __init__(
        self,
        seed: int,
        w: int = 320,
        h: int = 180,
        people: int = 2,
        people_scale: tuple[float, float] = (0.8, 1.6),
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.w, self.h = w, h
        self.m = max(w, h) // 3
        self.canvas = render_room(self.rng, w + 2 * self.m, h + 2 * self.m)
        self.people = random_people(self.rng, w + 2 * self.m, h + 2 * self.m, people, people_scale)
        self.effect = "normal"
        self.noise = 2.0

    def view(self, t: float, dx: float = 0, dy: float = 0, angle: float = 0) -> np.ndarray:
        img = self.canvas.copy()
        for p in self.people:
            p.draw(img, t)
        if dx == dy == angle == 0:
            return img[self.m : self.m + self.h, self.m : self.m + self.w]
        return move_view(img, self.w, self.h, self.m, dx, dy, angle)

    def frame(self, t: float) -> np.ndarray:
        """A healthy frame at time t, decoded from JPEG."""
        return camera_finish(self.view(t), self.rng, self.noise)[0]

    def jpeg(self, t: float, effect: str = "normal") -> bytes:
        """A JPEG for the MJPEG test server, with a simple live effect."""
        img = self.view(t)
        if effect == "covered":
            img = cover(img, self.rng, 1.0)
        elif effect == "defocused":
            img = cv2.GaussianBlur(img, (0, 0), self.w / 80)
        elif effect == "moved":
            img = self.view(t, dx=self.w * 0.2, dy=self.h * 0.1, angle=8)
        return camera_finish(img, self.rng, self.noise)[1]


def make_clip(
    kind: str,
    seed: int,
    w: int = 320,
    h: int = 180,
    step_s: float = 0.5,
    learn: int = 6,
    effect: int = 18,
) -> Clip:
    """One labelled clip: `learn` healthy samples, then `effect` samples of `kind`."""
    crowd = kind == "crowd"
    scene = Scene(
        seed,
        w,
        h,
        people=int(np.random.default_rng(seed).integers(8, 14)) if crowd else 2,
        people_scale=(0.5, 1.0) if crowd else (0.8, 1.6),
    )
    rng = np.random.default_rng(seed + 1_000_003)
    clip = Clip(kind, seed, EXPECTED[kind], learn)
    # Per-clip effect parameters.
    gain_to = float(rng.choice([rng.uniform(0.4, 0.7), rng.uniform(1.3, 1.8)]))
    frac = float(rng.uniform(0.65, 0.9))
    sigma = float(rng.uniform(2.5, 5.0)) * w / 320
    sx, sy = (
        float(rng.choice([-1, 1]) * rng.uniform(0.1, 0.3) * w),
        float(rng.uniform(-0.15, 0.15) * h),
    )
    angle = float(rng.choice([-1, 1]) * rng.uniform(5, 20)) if rng.random() < 0.5 else 0.0
    if angle:
        sx, sy = sx * float(rng.uniform(0, 0.5)), sy * float(rng.uniform(0, 0.5))
    pass_start = float(rng.uniform(2, effect * step_s - 3))
    pass_len = float(rng.uniform(1.0, 2.0))
    pass_frac = float(rng.uniform(0.5, 0.95))
    frozen: np.ndarray | None = None
    for i in range(learn + effect):
        t = i * step_s
        te = (i - learn) * step_s  # time into the effect
        if i < learn:
            clip.samples.append((t, scene.frame(t)))
            continue
        img = scene.view(t)
        noise = 2.0
        if kind == "covered":
            img = cover(img, rng, 1.0)
        elif kind == "partially_covered":
            img = cover(img, rng, frac)
        elif kind == "defocused":
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        elif kind == "moved":
            img = scene.view(t, sx, sy, angle)
        elif kind == "frozen":
            if frozen is None:
                frozen = scene.frame(t)
            clip.samples.append((t, frozen))
            continue
        elif kind == "light_gradual":
            ramp = min(1.0, te / (effect * step_s * 0.8))
            img = apply_gain(img, 1 + (gain_to - 1) * ramp)
        elif kind == "lamp_switch":
            img = apply_gain(img, gain_to)
            noise = 2.0 / gain_to  # auto-gain lifts the noise in the dark
        elif kind == "day_night":
            img = night(img)
            noise = 4.0
        elif kind == "lens_pass" and pass_start <= te <= pass_start + pass_len:
            img = cover(img, rng, pass_frac)
        clip.samples.append((t, camera_finish(img, rng, noise)[0]))
    return clip


def score_kind(args: tuple[str, int, int]) -> Score:
    """Score the default detector on `n` clips of one kind (a picklable unit for a pool)."""
    from adapters.camera_tamper import TamperDetector  # the detector under test

    kind, n, seed = args
    k = (TAMPER_KINDS + NEGATIVE_KINDS).index(kind)
    clips = (make_clip(kind, seed * 1_000_000 + k * 10_000 + i) for i in range(n))
    return evaluate(TamperDetector, clips)[kind]


def score_all(per_kind: int, seed: int = 1, workers: int = 2) -> dict[str, Score]:
    """Every kind scored, in `workers` processes."""
    kinds = TAMPER_KINDS + NEGATIVE_KINDS
    jobs = [(k, per_kind, seed) for k in kinds]
    if workers <= 1:
        return {k: score_kind(j) for k, j in zip(kinds, jobs, strict=True)}
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return dict(zip(kinds, pool.map(score_kind, jobs), strict=True))


def labelled_set(
    per_kind: int,
    seed: int = 1,
    w: int = 320,
    h: int = 180,
    kinds: tuple[str, ...] = TAMPER_KINDS + NEGATIVE_KINDS,
) -> Iterator[Clip]:
    """`per_kind` seeded clips of every kind."""
    for k, kind in enumerate(kinds):
        for n in range(per_kind):
            yield make_clip(kind, seed * 1_000_000 + k * 10_000 + n, w, h)


@dataclass
class Score:
    """Per-kind outcome of running a detector over labelled clips."""

    kind: str
    clips: int = 0
    hits: int = 0  # tamper clips: the expected tamper was reported
    false_alarms: int = 0  # clips where another tamper (anything, for negatives) was reported
    first_s: list[float] = field(default_factory=list)  # time to report, into the effect

    @property
    def recall(self) -> float:
        return self.hits / self.clips if self.clips else 0.0


def evaluate(detector_factory: Callable[[], Any], clips: Iterable[Clip]) -> dict[str, Score]:
    """Run a fresh detector (`update(frame, t) -> tamper`) over each clip and score it."""
    scores: dict[str, Score] = {}
    for clip in clips:
        s = scores.setdefault(clip.kind, Score(clip.kind))
        s.clips += 1
        det = detector_factory()
        reported: set[str] = set()
        effect_t0 = clip.samples[clip.learn][0]
        first: float | None = None
        for i, (t, frame) in enumerate(clip.samples):
            tamper = det.update(frame, t)
            if tamper is not None:
                reported.add(tamper)
                if first is None and i >= clip.learn and tamper == clip.expected:
                    first = t - effect_t0
        if clip.expected is not None and clip.expected in reported:
            s.hits += 1
            if first is not None:
                s.first_s.append(first)
        if reported - {clip.expected}:
            s.false_alarms += 1
    return scores


def score_table(scores: dict[str, Score]) -> str:
    """A markdown table: kind, expected, clips, recall, false alarms, median time to report."""
    lines = [
        "| clip kind | must report | clips | recall | false alarms (wrong type) "
        "| median s to report |",
        "|---|---|---|---|---|---|",
    ]
    for kind, s in scores.items():
        exp = EXPECTED[kind]
        recall = f"{100 * s.recall:.1f} %" if exp else "—"
        med = f"{float(np.median(s.first_s)):.1f}" if s.first_s else "—"
        lines.append(
            f"| {kind} | {exp or 'nothing'} | {s.clips} | {recall} | {s.false_alarms} | {med} |"
        )
    return "\n".join(lines)
