"""Synthetic camera pictures: a textured room per camera, people walking, light drifting.

Pure functions on numpy arrays (no I/O), so the camera server and the tests render the same
pictures. A room is seeded by the camera id: the same camera always shows the same room, and
two cameras show different rooms. Tamper effects (cover, defocus, move) are applied to a
rendered frame as a real lens cap, blur or knocked camera would change it.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Frame = NDArray[Any]  # uint8 BGR, H x W x 3 (OpenCV's own stubs say no more)

BASE_W, BASE_H = 1280, 720


def _rng(camera_id: str, salt: str = "") -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{camera_id}/{salt}".encode()))


def _color(rng: np.random.Generator, lo: int = 40, hi: int = 220) -> tuple[int, int, int]:
    c = rng.integers(lo, hi, size=3)
    return int(c[0]), int(c[1]), int(c[2])


def build_room(camera_id: str, width: int = BASE_W, height: int = BASE_H) -> Frame:
    """The empty room a camera looks at: walls, tiled floor, shelves, desks, a door."""
    rng = _rng(camera_id, "room")
    w, h = BASE_W, BASE_H
    img: Frame = np.zeros((h, w, 3), np.uint8)
    horizon = int(h * rng.uniform(0.45, 0.6))
    wall = np.array(_color(rng, 120, 210), np.float32)
    # Plaster texture: low-frequency blotches plus fine grain, so walls are not flat.
    blotch = cv2.resize(rng.normal(0, 12, (h // 40, w // 40)).astype(np.float32), (w, h))
    grain = rng.normal(0, 5, (h, w)).astype(np.float32)
    img[:horizon] = np.clip(
        wall[None, None, :] + (blotch + grain)[:horizon, :, None], 0, 255
    ).astype(np.uint8)
    # Floor tiles in perspective: converging lines to a vanishing point.
    floor = np.array(_color(rng, 60, 150), np.float32)
    img[horizon:] = np.clip(floor[None, None, :] + grain[horizon:, :, None] * 1.5, 0, 255).astype(
        np.uint8
    )
    vx = int(w * rng.uniform(0.35, 0.65))
    for x in range(-w, 2 * w, w // 10):
        cv2.line(img, (vx, horizon), (x, h), (40, 40, 40), 2, cv2.LINE_AA)
    y, step = float(horizon + 8), 10.0
    while y < h:
        cv2.line(img, (0, int(y)), (w, int(y)), (45, 45, 45), 2, cv2.LINE_AA)
        step *= 1.35
        y += step
    cv2.line(img, (0, horizon), (w, horizon), (30, 30, 30), 3)
    # A door and a window in the back wall.
    dx = int(rng.uniform(0.05, 0.3) * w)
    cv2.rectangle(img, (dx, int(horizon * 0.25)), (dx + w // 10, horizon), _color(rng, 60, 120), -1)
    cv2.rectangle(img, (dx, int(horizon * 0.25)), (dx + w // 10, horizon), (20, 20, 20), 3)
    cv2.circle(img, (dx + w // 12, int(horizon * 0.65)), 6, (200, 200, 200), -1)
    wx = int(rng.uniform(0.6, 0.8) * w)
    cv2.rectangle(
        img, (wx, int(horizon * 0.15)), (wx + w // 6, int(horizon * 0.55)), (230, 220, 200), -1
    )
    for k in range(1, 3):
        xx = wx + k * w // 18
        cv2.line(img, (xx, int(horizon * 0.15)), (xx, int(horizon * 0.55)), (60, 60, 60), 4)
    cv2.line(img, (wx, int(horizon * 0.35)), (wx + w // 6, int(horizon * 0.35)), (60, 60, 60), 4)
    # Shelves full of binders: many small coloured rectangles give plenty of edges.
    for _ in range(int(rng.integers(2, 4))):
        sx = int(rng.uniform(0.3, 0.85) * w)
        sw, sh = int(w * rng.uniform(0.1, 0.18)), int(horizon * rng.uniform(0.5, 0.8))
        top = horizon + int(h * 0.05) - sh
        cv2.rectangle(img, (sx, top), (sx + sw, horizon + int(h * 0.05)), (70, 50, 35), -1)
        for row in range(4):
            ry = top + row * sh // 4
            cv2.line(img, (sx, ry), (sx + sw, ry), (40, 30, 20), 4)
            bx = sx + 4
            while bx < sx + sw - 8:
                bw = int(rng.integers(6, 16))
                bh = int(sh / 4 * rng.uniform(0.55, 0.9))
                cv2.rectangle(
                    img, (bx, ry + sh // 4 - bh), (bx + bw, ry + sh // 4 - 2), _color(rng), -1
                )
                bx += bw + 2
    # Desks with papers and a monitor.
    for _ in range(int(rng.integers(1, 3))):
        tx = int(rng.uniform(0.05, 0.6) * w)
        ty = int(rng.uniform(horizon + 0.1 * h, h * 0.8))
        tw, th = int(w * rng.uniform(0.18, 0.28)), int(h * 0.05)
        cv2.rectangle(img, (tx, ty), (tx + tw, ty + th), _color(rng, 80, 160), -1)
        cv2.rectangle(img, (tx + 10, ty + th), (tx + 20, ty + th + h // 8), (50, 50, 50), -1)
        cv2.rectangle(
            img, (tx + tw - 20, ty + th), (tx + tw - 10, ty + th + h // 8), (50, 50, 50), -1
        )
        cv2.rectangle(
            img, (tx + tw // 3, ty - h // 9), (tx + tw // 3 + w // 14, ty - 6), (25, 25, 25), -1
        )
        for _ in range(4):
            px = int(tx + rng.uniform(0, tw - 40))
            cv2.rectangle(img, (px, ty + 4), (px + 30, ty + 16), (240, 240, 235), -1)
    # A label on the wall, as many rooms have.
    cv2.putText(
        img,
        camera_id.upper(),
        (int(w * 0.02), int(horizon * 0.12)),
        cv2.FONT_HERSHEY_SIMPLEX,
        1.2,
        (30, 30, 30),
        2,
        cv2.LINE_AA,
    )
    if (width, height) != (w, h):
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    return img


@dataclass
class Scene:
    """A camera's room and the people moving in it; `render(t)` is one picture at time t."""

    camera_id: str
    width: int = BASE_W
    height: int = BASE_H
    _room: Frame | None = field(default=None, repr=False)
    _noise: Frame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        rng = _rng(self.camera_id, "people")
        self.walkers = [
            (
                rng.uniform(20, 60),
                rng.uniform(0, 2 * math.pi),
                rng.uniform(0.55, 0.9),
                _color(rng, 30, 200),
            )
            for _ in range(int(rng.integers(1, 4)))
        ]

    @property
    def room(self) -> Frame:
        if self._room is None:
            self._room = build_room(self.camera_id, self.width, self.height)
        return self._room

    def _sensor_noise(self) -> Frame:
        if self._noise is None:
            rng = _rng(self.camera_id, "noise")
            self._noise = rng.integers(0, 7, (self.height, self.width, 1), dtype=np.uint8)
        return self._noise

    def render(self, t: float, *, night: bool = False, label: str = "") -> Frame:
        img = self.room.copy()
        w, h = self.width, self.height
        s = w / BASE_W
        for period, phase, depth, color in self.walkers:
            # A person walks back and forth across the room along a sine path.
            x = int((0.5 + 0.42 * math.sin(2 * math.pi * t / period + phase)) * w)
            y = int(depth * h)
            bh = int(h * 0.32 * depth)
            bw = int(bh * 0.3)
            cv2.rectangle(img, (x - bw // 2, y - bh), (x + bw // 2, y), color, -1)
            cv2.rectangle(
                img, (x - bw // 2, y - bh), (x + bw // 2, y), (20, 20, 20), max(1, int(2 * s))
            )
            cv2.circle(img, (x, y - bh - int(bh * 0.12)), int(bh * 0.12), (150, 170, 200), -1)
        # Slow lighting drift (clouds, lamps warming up), period five minutes.
        gain = 1.0 + 0.08 * math.sin(2 * math.pi * t / 300.0)
        if night:
            grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            grey = cv2.convertScaleAbs(grey, alpha=0.45 * gain, beta=18)
            img = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        elif abs(gain - 1.0) > 0.005:
            img = cv2.convertScaleAbs(img, alpha=gain, beta=0)
        # Sensor noise shifted every frame, so consecutive frames are never byte-identical.
        shift = int(t * 37) % max(1, h)
        noise = np.roll(self._sensor_noise(), shift, axis=0)
        cv2.add(img, np.broadcast_to(noise, img.shape).copy(), dst=img)
        if label:
            cv2.putText(
                img,
                label,
                (int(10 * s), h - int(12 * s)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.6 * s * 1.5,
                (255, 255, 255),
                max(1, int(2 * s)),
                cv2.LINE_AA,
            )
        return img


# -- tamper effects -----------------------------------------------------------------------


def cover(img: Frame, partial: bool = False) -> Frame:
    """A lens cap or spray: near-black and uniform, or about 70 % of the picture for `partial`."""
    h, w = img.shape[:2]
    dark = np.full_like(img, 12)
    dark += np.random.default_rng().integers(0, 3, img.shape, dtype=np.uint8)
    if not partial:
        return dark
    out = img.copy()
    ch, cw = int(h * 0.84), int(w * 0.84)  # 0.84² ≈ 0.7 of the area
    out[:ch, :cw] = dark[:ch, :cw]
    return out


def defocus(img: Frame) -> Frame:
    """A strong blur, as a turned focus ring or a smeared lens gives."""
    # Blurring a 1/8 copy and scaling it back is the same strong blur at a fraction of the cost.
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=3.0, sigmaY=3.0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def move(img: Frame) -> Frame:
    """The camera knocked aside: the view shifted and rotated."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 9.0, 1.1)
    m[0, 2] += w * 0.18
    m[1, 2] += h * 0.12
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def encode_jpeg(img: Frame, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
