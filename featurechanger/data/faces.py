"""Synthetic faces whose drawn features follow their labels: the face model and its renderer.

The embedded dataset (written by featurechanger.data.synth): without the real CelebA (it
cannot be downloaded here) the whole system still runs and can be measured on faces drawn with
Pillow at CelebA's 178x218 aligned geometry
(eyes near row 111, mouth near row 152). The attributes in DRAWN are painted so that they stay
visible at 32x32; the others are only sampled, with CelebA's prevalence.

Labels follow CelebA's prevalences and the correlations that make attribute editing hard
(Eyeglasses mostly on older men, Mustache and Goatee only on men, Blond_Hair mostly on women,
Smiling often with Mouth_Slightly_Open). Sources: ../shared/RESEARCH.md and the attribute
counts of list_attr_celeba.txt.

Every random choice of a face is drawn up front, in a fixed order whatever its labels, from a
generator seeded by (seed, image index) and (seed, identity): the output does not depend on the
number of workers, and `counterfactual` renders the very same faces with one attribute changed
(the editing issue's ground truth).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from featurechanger.attributes import ATTRIBUTE_INDEX, ATTRIBUTES, canonical_attribute
from featurechanger.errors import ConfigError

WIDTH, HEIGHT = 178, 218
IMAGES_PER_IDENTITY = 20  # CelebA: 202,599 images of 10,177 people

P_MALE, P_YOUNG = 0.417, 0.774

DRAWN: tuple[str, ...] = (
    "Bald", "Bangs", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Eyeglasses", "Goatee",
    "Gray_Hair", "Male", "Mouth_Slightly_Open", "Mustache", "No_Beard", "Pale_Skin", "Smiling",
    "Wearing_Hat", "Wearing_Lipstick", "Young",
)
SETTABLE: tuple[str, ...] = tuple(a for a in DRAWN if a != "No_Beard")  # No_Beard is derived
HAIR_COLOURS: tuple[str, ...] = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")


@dataclass(frozen=True)
class AttributeStats:
    """CelebA prevalence, and the share of men and of young people among its positives."""

    prevalence: float
    male_share: float = P_MALE  # P(Male | attribute); P_MALE means independent of sex
    young_share: float = P_YOUNG

    def probability(self, male: bool, young: bool) -> float:
        """P(attribute | sex, age), assuming sex and age independent: the marginals stay exact."""
        sex = self.male_share / P_MALE if male else (1 - self.male_share) / (1 - P_MALE)
        age = self.young_share / P_YOUNG if young else (1 - self.young_share) / (1 - P_YOUNG)
        return self.prevalence * sex * age


# (prevalence, share of men among positives, share of young people among positives).
# Male, Young, Goatee, No_Beard and the CONDITIONAL ones are drawn by their own rules.
STATS: dict[str, AttributeStats] = {
    "5_o_Clock_Shadow": AttributeStats(0.111, 1.0),
    "Arched_Eyebrows": AttributeStats(0.267, 0.07),
    "Attractive": AttributeStats(0.513, 0.23, 0.93),
    "Bags_Under_Eyes": AttributeStats(0.204, 0.65, 0.55),
    "Bald": AttributeStats(0.022, 1.0, 0.25),
    "Bangs": AttributeStats(0.152, 0.16),
    "Big_Lips": AttributeStats(0.241, 0.3),
    "Big_Nose": AttributeStats(0.235, 0.75, 0.55),
    "Black_Hair": AttributeStats(0.239, 0.5),
    "Blond_Hair": AttributeStats(0.148, 0.06),
    "Blurry": AttributeStats(0.051),
    "Brown_Hair": AttributeStats(0.205, 0.3),
    "Bushy_Eyebrows": AttributeStats(0.142, 0.7),
    "Chubby": AttributeStats(0.058, 0.85, 0.35),
    "Double_Chin": AttributeStats(0.047, 0.7, 0.3),
    "Eyeglasses": AttributeStats(0.065, 0.78, 0.44),
    "Gray_Hair": AttributeStats(0.042, 0.75, 0.1),
    "Mustache": AttributeStats(0.042, 1.0),
    "Narrow_Eyes": AttributeStats(0.115),
    "Oval_Face": AttributeStats(0.284, 0.3),
    "Pale_Skin": AttributeStats(0.043, 0.3),
    "Pointy_Nose": AttributeStats(0.277, 0.25),
    "Receding_Hairline": AttributeStats(0.080, 0.6, 0.5),
    "Rosy_Cheeks": AttributeStats(0.066, 0.05),
    "Sideburns": AttributeStats(0.057, 1.0),
    "Smiling": AttributeStats(0.482),
    "Straight_Hair": AttributeStats(0.208),
    "Wavy_Hair": AttributeStats(0.320, 0.15),
    "Wearing_Earrings": AttributeStats(0.189, 0.03),
    "Wearing_Hat": AttributeStats(0.048, 0.5),
    "Wearing_Lipstick": AttributeStats(0.472, 0.01),
    "Wearing_Necklace": AttributeStats(0.123, 0.03),
    "Wearing_Necktie": AttributeStats(0.073, 0.97),
}
# Conditional probabilities: P(attribute | condition), P(attribute | not condition). They keep
# CelebA's prevalences (Mouth_Slightly_Open 48.3 %, High_Cheekbones 45.5 %, Heavy_Makeup 38.4 %).
CONDITIONAL: dict[str, tuple[str, float, float]] = {
    "Mouth_Slightly_Open": ("Smiling", 0.72, 0.262),
    "High_Cheekbones": ("Smiling", 0.80, 0.133),
    "Heavy_Makeup": ("Wearing_Lipstick", 0.80, 0.0121),
}
P_GOATEE_GIVEN_MUSTACHE, P_GOATEE_GIVEN_SHAVED_LIP = 0.6, 0.1007  # men only; Goatee 6.3 %
P_FULL_BEARD = 0.253  # men with neither: brings No_Beard to CelebA's 83.5 %
P_LONG_HAIR = {True: 0.08, False: 0.85}  # by Male
HAIR_CATEGORIES: tuple[str, ...] = ("Bald", "Gray_Hair", "Blond_Hair", "Brown_Hair", "Black_Hair")

SKIN_DARK, SKIN_LIGHT, SKIN_PALE = (92, 58, 40), (232, 188, 158), (247, 228, 218)
HAIR_RGB = {"Black_Hair": (28, 24, 24), "Brown_Hair": (105, 66, 38),
            "Blond_Hair": (224, 190, 118), "Gray_Hair": (178, 178, 182), None: (150, 68, 38)}
LIPSTICKS = ((190, 28, 45), (214, 84, 118), (140, 28, 62), (222, 74, 66))
IRISES = ((70, 45, 25), (35, 25, 20), (70, 110, 160), (80, 120, 70))


@dataclass(frozen=True)
class Look:
    """Every random choice of a face that is not a label, drawn whatever the labels are."""

    # the person (shared by the IMAGES_PER_IDENTITY images of one identity)
    skin_tone: float
    skin_jitter: tuple[float, float, float]
    hair_jitter: tuple[float, float, float]
    long_hair: float  # uniform; long when below P_LONG_HAIR[male]
    full_beard: float  # uniform; a man has a full beard when below P_FULL_BEARD
    face_width: float
    face_length: float
    mouth_width: float
    iris: int
    # the photo
    centre: tuple[float, float]
    angle: float
    scale: float
    background: tuple[tuple[int, int, int], tuple[int, int, int]]
    vertical_gradient: bool
    clutter: tuple[tuple[bool, bool, float, float, float, float, tuple[int, int, int]], ...]
    clothing: tuple[int, int, int]
    glasses_size: tuple[float, float]
    glasses_squareness: float
    glasses_thickness: float
    glasses_colour: tuple[int, int, int]
    glasses_tinted: bool
    hat_colour: tuple[int, int, int]
    hat_height: float
    hat_brim: float
    lipstick: tuple[int, int, int]
    bangs_edge: tuple[float, ...]
    mouth_opening: float
    light_slope: float
    brightness: float
    noise_sigma: float
    noise_offset: tuple[int, int]
    blur_radius: float
    jpeg_quality: int


@dataclass(frozen=True)
class Face:
    """One synthetic face: its labels (40,) uint8 0/1 in ATTRIBUTES order and its look."""

    labels: np.ndarray
    look: Look
    identity: int

    def has(self, attribute: str) -> bool:
        return bool(self.labels[ATTRIBUTE_INDEX[attribute]])


# ---------------------------------------------------------------------------------------------
# Drawing the random choices


def draw_face(seed: int, index: int) -> Face:
    """The face at `index` of the dataset with `seed`: same inputs, same face, in any process."""
    identity = index // IMAGES_PER_IDENTITY
    person = np.random.default_rng([seed, 1, identity])
    photo = np.random.default_rng([seed, 0, index])
    person_u = person.random(4)  # Male, Young, Pale_Skin, hair category
    photo_u = photo.random(len(ATTRIBUTES))  # one per attribute
    look = _draw_look(person, photo)
    labels = _sample_labels(person_u, photo_u, look)
    return Face(labels=labels, look=look, identity=identity + 1)


def _rgb(rng: np.random.Generator, low: int = 20, high: int = 236) -> tuple[int, int, int]:
    return tuple(rng.integers(low, high, 3).tolist())


def _draw_look(person: np.random.Generator, photo: np.random.Generator) -> Look:
    skin_tone, long_hair, full_beard = person.random(3)
    skin_jitter = tuple(person.uniform(-1, 1, 3).tolist())
    hair_jitter = tuple(person.uniform(-1, 1, 3).tolist())
    face_width, face_length, mouth_width = person.uniform(0.92, 1.08, 3)
    iris = int(person.integers(len(IRISES)))
    centre = (WIDTH / 2 + photo.uniform(-6, 6), 111 + photo.uniform(-6, 6))
    angle, scale = photo.uniform(-8, 8), photo.uniform(0.9, 1.1)
    background = (_rgb(photo), _rgb(photo))
    vertical_gradient = bool(photo.random() < 0.5)
    clutter = tuple(
        (bool(photo.random() < 0.5), bool(photo.random() < 0.5), *photo.random(4).tolist(),
         _rgb(photo))
        for _ in range(3)
    )
    clothing = _rgb(photo)
    glasses_size = (photo.uniform(11.5, 14.5), photo.uniform(8, 11))
    glasses_squareness = photo.uniform(2, 5)
    glasses_thickness = photo.uniform(3, 5)
    dark_frame = photo.random() < 0.6
    frame_grey, frame_colour = int(photo.integers(15, 70)), _rgb(photo)
    glasses_colour = (frame_grey,) * 3 if dark_frame else frame_colour
    glasses_tinted = bool(photo.random() < 0.25)
    hat_colour, hat_height, hat_brim = _rgb(photo), photo.uniform(26, 40), photo.uniform(14, 28)
    lipstick_base = LIPSTICKS[int(photo.integers(len(LIPSTICKS)))]
    lipstick = tuple(min(255, max(0, c + d)) for c, d in
                     zip(lipstick_base, photo.integers(-15, 16, 3).tolist()))
    bangs_edge = tuple(photo.uniform(-3, 3, 9).tolist())
    mouth_opening = photo.uniform(6, 10)
    light_slope, brightness = photo.uniform(-0.3, 0.3), photo.uniform(0.88, 1.1)
    noise_sigma = photo.uniform(2, 7)
    noise_offset = (int(photo.integers(0, 41)), int(photo.integers(0, 81)))
    blur_radius = photo.uniform(1.5, 2.5)
    jpeg_quality = int(photo.integers(80, 96))
    return Look(
        skin_tone=skin_tone, skin_jitter=skin_jitter, hair_jitter=hair_jitter,
        long_hair=long_hair, full_beard=full_beard, face_width=face_width,
        face_length=face_length, mouth_width=mouth_width, iris=iris, centre=centre, angle=angle,
        scale=scale, background=background, vertical_gradient=vertical_gradient, clutter=clutter,
        clothing=clothing, glasses_size=glasses_size, glasses_squareness=glasses_squareness,
        glasses_thickness=glasses_thickness, glasses_colour=glasses_colour,
        glasses_tinted=glasses_tinted, hat_colour=hat_colour, hat_height=hat_height,
        hat_brim=hat_brim, lipstick=lipstick, bangs_edge=bangs_edge, mouth_opening=mouth_opening,
        light_slope=light_slope, brightness=brightness, noise_sigma=noise_sigma,
        noise_offset=noise_offset, blur_radius=blur_radius, jpeg_quality=jpeg_quality,
    )


def _sample_labels(person_u: np.ndarray, photo_u: np.ndarray, look: Look) -> np.ndarray:
    """CelebA-like labels from uniforms drawn up front (so no draw depends on a label)."""
    labels = np.zeros(len(ATTRIBUTES), dtype=np.uint8)
    male, young = bool(person_u[0] < P_MALE), bool(person_u[1] < P_YOUNG)
    labels[ATTRIBUTE_INDEX["Male"]], labels[ATTRIBUTE_INDEX["Young"]] = male, young
    labels[ATTRIBUTE_INDEX["Pale_Skin"]] = person_u[2] < STATS["Pale_Skin"].probability(male, young)
    category = _hair_category(person_u[3], male, young)
    if category is not None:
        labels[ATTRIBUTE_INDEX[category]] = 1
    person_level = {"Male", "Young", "Pale_Skin", *HAIR_CATEGORIES}
    for name, stats in STATS.items():
        if name not in person_level:
            column = ATTRIBUTE_INDEX[name]
            labels[column] = photo_u[column] < stats.probability(male, young)
    for name, (condition, p_yes, p_no) in CONDITIONAL.items():
        p = p_yes if labels[ATTRIBUTE_INDEX[condition]] else p_no
        labels[ATTRIBUTE_INDEX[name]] = photo_u[ATTRIBUTE_INDEX[name]] < p
    mustache = labels[ATTRIBUTE_INDEX["Mustache"]]
    p_goatee = P_GOATEE_GIVEN_MUSTACHE if mustache else P_GOATEE_GIVEN_SHAVED_LIP
    labels[ATTRIBUTE_INDEX["Goatee"]] = male and photo_u[ATTRIBUTE_INDEX["Goatee"]] < p_goatee
    return _derive_no_beard(labels, look)


def _hair_category(u: float, male: bool, young: bool) -> str | None:
    """One of HAIR_CATEGORIES, or None for an unlabelled colour (auburn), by CelebA's shares."""
    cumulative = 0.0
    for name in HAIR_CATEGORIES:
        cumulative += STATS[name].probability(male, young)
        if u < cumulative:
            return name
    return None


def _derive_no_beard(labels: np.ndarray, look: Look) -> np.ndarray:
    """No_Beard follows what is drawn: no goatee, no mustache and no full beard."""
    labels[ATTRIBUTE_INDEX["No_Beard"]] = not (
        labels[ATTRIBUTE_INDEX["Goatee"]] or labels[ATTRIBUTE_INDEX["Mustache"]]
        or _full_beard(labels, look)
    )
    return labels


def _full_beard(labels: np.ndarray, look: Look) -> bool:
    return bool(labels[ATTRIBUTE_INDEX["Male"]]) and look.full_beard < P_FULL_BEARD


def with_attributes(face: Face, changes: dict[str, int]) -> Face:
    """The same face with some drawn attributes set; derived labels follow.

    Setting a hair colour to 1 clears the other hair colours (a face has one); No_Beard is
    derived from Goatee, Mustache and Male, so it cannot be set directly.
    """
    labels = face.labels.copy()
    for name, value in changes.items():
        if value and name in HAIR_COLOURS:
            labels[[ATTRIBUTE_INDEX[c] for c in HAIR_COLOURS]] = 0
        labels[ATTRIBUTE_INDEX[name]] = value
    return replace(face, labels=_derive_no_beard(labels, face.look))


def check_counterfactual(changes: dict[str, int] | None) -> dict[str, int]:
    """Canonical attribute names with 0/1 values; only attributes that are drawn can change."""
    checked: dict[str, int] = {}
    for name, value in (changes or {}).items():
        canonical = canonical_attribute(name)
        if canonical not in SETTABLE:
            raise ConfigError(
                f"Cannot set {canonical!r} in a counterfactual: only drawn attributes change the "
                f"picture ({', '.join(SETTABLE)}); No_Beard follows Goatee and Mustache."
            )
        if value not in (0, 1):
            raise ConfigError(
                f"Counterfactual value for {canonical!r} must be 0 or 1, not {value!r}.")
        checked[canonical] = int(value)
    return checked


# ---------------------------------------------------------------------------------------------
# Rendering

_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 28, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 28, endpoint=False))], axis=1)


def place(look: Look, points: np.ndarray) -> np.ndarray:
    """(N, 2) face coordinates -> photo pixels. Face coordinates: origin between the eyes,
    x right, y down, in pixels at scale 1; the look turns, scales and moves them."""
    turn = math.radians(look.angle)
    matrix = look.scale * np.array([[math.cos(turn), -math.sin(turn)],
                                    [math.sin(turn), math.cos(turn)]])
    return points @ matrix.T + np.array(look.centre)


class _Pen:
    """Draws shapes given in face coordinates (see `place`)."""

    def __init__(self, draw: ImageDraw.ImageDraw, look: Look) -> None:
        self.draw = draw
        self.look = look

    def polygon(self, points: np.ndarray, fill: tuple[int, ...]) -> None:
        self.draw.polygon(place(self.look, points).ravel().tolist(), fill=fill)

    def line(self, points: np.ndarray, fill: tuple[int, ...], width: float) -> None:
        self.draw.line(place(self.look, points).ravel().tolist(), fill=fill,
                       width=max(1, round(width * self.look.scale)), joint="curve")

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: tuple[int, ...]) -> None:
        self.polygon(_CIRCLE * (rx, ry) + (cx, cy), fill)


def _mix(colour: tuple[int, ...], factors: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(int(min(255, c * f)) for c, f in zip(colour, factors))


def _skin(face: Face) -> tuple[int, int, int]:
    look = face.look
    if face.has("Pale_Skin"):
        base, spread = SKIN_PALE, 5
    else:
        light = look.skin_tone ** 0.5  # most CelebA faces are light-skinned; keep every tone
        base = tuple(d + (l - d) * light for d, l in zip(SKIN_DARK, SKIN_LIGHT))
        spread = 10
    return tuple(int(np.clip(b + spread * j, 0, 255)) for b, j in zip(base, look.skin_jitter))


def _hair(face: Face) -> tuple[int, int, int]:
    colour = next((c for c in HAIR_COLOURS if face.has(c)), None)
    base = HAIR_RGB[colour]
    if colour == "Gray_Hair":  # stay grey: jitter brightness only
        return tuple(int(b + 18 * face.look.hair_jitter[0]) for b in base)
    return tuple(int(np.clip(b + 14 * j, 0, 255)) for b, j in zip(base, face.look.hair_jitter))


@dataclass(frozen=True)
class Geometry:
    """Where the features of a face sit, in face coordinates (see _Pen)."""

    eyes: np.ndarray  # (2, 2) left then right eye centre
    nose: np.ndarray  # (2,)
    mouth_corners: np.ndarray  # (2, 2) left then right
    mouth_middle_y: float
    face_rx: float
    face_top: float
    chin: float


def geometry(face: Face) -> Geometry:
    look = face.look
    smiling = face.has("Smiling")
    half_mouth = (18.5 if smiling else 15.0) * look.mouth_width
    corner_y = 36.0 if smiling else 41.0
    return Geometry(
        eyes=np.array([[-19.5, 0.0], [19.5, 0.0]]), nose=np.array([0.0, 24.0]),
        mouth_corners=np.array([[-half_mouth, corner_y], [half_mouth, corner_y]]),
        mouth_middle_y=44.0 if smiling else 41.8,
        face_rx=(49.0 if face.has("Male") else 45.0) * look.face_width,
        face_top=-50.0 * look.face_length, chin=76.0 * look.face_length,
    )


def landmarks(face: Face) -> np.ndarray:
    """(10,) int32: left eye, right eye, nose, left and right mouth corner x/y, in the photo."""
    shape = geometry(face)
    points = np.concatenate([shape.eyes, shape.nose[None], shape.mouth_corners])
    return np.rint(place(face.look, points)).astype(np.int32).ravel()


def bbox(face: Face) -> np.ndarray:
    """(4,) int32 x_1, y_1, width, height of the face outline, clipped to the photo."""
    shape = geometry(face)
    outline = _face_outline(shape, face.has("Male"))
    placed = place(face.look, outline)
    x0, y0 = np.clip(placed.min(axis=0), 0, None)
    x1, y1 = np.minimum(placed.max(axis=0), (WIDTH, HEIGHT))
    return np.rint([x0, y0, x1 - x0, y1 - y0]).astype(np.int32)


def _face_outline(shape: Geometry, male: bool) -> np.ndarray:
    """A rounded forehead and a jaw that narrows to the chin (less for men: a squarer jaw)."""
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    taper = 0.2 if male else 0.36
    lower = np.sin(t) > 0
    x = shape.face_rx * np.cos(t) * np.where(lower, 1 - taper * np.sin(t) ** 2, 1)
    middle = 12.0
    y = np.where(lower, middle + (shape.chin - middle) * np.sin(t),
                 middle + (middle - shape.face_top) * np.sin(t))
    return np.stack([x, y], axis=1)


def render(face: Face) -> Image.Image:
    """Draw the face as a 178x218 RGB image, before lighting, noise and JPEG encoding.

    Back to front: background, clothes, hair behind the head, neck, ears, face, then the
    features, and last what covers them (hairline, bangs, glasses, hat).
    """
    look, shape = face.look, geometry(face)
    image = _background(look)
    draw = ImageDraw.Draw(image)
    for present, is_ellipse, x, y, w, h, colour in look.clutter:
        if present:
            box = [x * WIDTH, y * HEIGHT, x * WIDTH + 20 + w * 60, y * HEIGHT + 20 + h * 60]
            (draw.ellipse if is_ellipse else draw.rectangle)(box, fill=colour)
    pen = _Pen(draw, look)
    skin, hair = _skin(face), _hair(face)
    pen.ellipse(0, 150, 95, 48, look.clothing)
    bald = face.has("Bald")
    long_hair = look.long_hair < P_LONG_HAIR[face.has("Male")]
    if not bald and long_hair:
        _long_hair(pen, shape, hair)
    if not bald:
        pen.polygon(_hair_cap(shape), hair)
    pen.polygon(np.array([[-20, 40], [20, 40], [22, 125], [-22, 125]]), _mix(skin, (0.9,) * 3))
    for side in (-1, 1):
        pen.ellipse(side * shape.face_rx, 12, 6, 11, _mix(skin, (0.95,) * 3))
    pen.polygon(_face_outline(shape, face.has("Male")), skin)
    if not face.has("Young"):
        _wrinkles(pen, shape, skin)
    facial_hair = _mix(hair, (0.75, 0.75, 0.75))
    if _full_beard(face.labels, look):
        stubble = tuple((h + s) // 2 for h, s in zip(facial_hair, skin))  # hair seen on skin
        _full_beard_shape(pen, shape, stubble)
    _eyes(pen, shape, face, facial_hair)
    pen.line(np.array([[1.5, 6], [3, 20], [0, 24.5]]), _mix(skin, (0.72, 0.7, 0.7)), 2.5)
    _mouth(pen, shape, face, skin)
    if face.has("Mustache"):
        _mustache(pen, shape, facial_hair)
    if face.has("Goatee"):
        _goatee(pen, shape, facial_hair)
    if not bald:
        _hairline(pen, shape, hair)
    if face.has("Bangs"):
        _bangs(pen, shape, hair, look.bangs_edge)
    if face.has("Eyeglasses"):
        _glasses(pen, shape, look)
    if face.has("Wearing_Hat"):
        _hat(pen, shape, look)
    if face.has("Blurry"):
        image = image.filter(ImageFilter.GaussianBlur(look.blur_radius))
    return image


def _background(look: Look) -> Image.Image:
    first, second = (np.array(c, dtype=np.float32) for c in look.background)
    steps = HEIGHT if look.vertical_gradient else WIDTH
    ramp = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
    line = (first + (second - first) * ramp).astype(np.uint8)  # (steps, 3)
    if look.vertical_gradient:
        pixels = np.broadcast_to(line[:, None, :], (HEIGHT, WIDTH, 3))
    else:
        pixels = np.broadcast_to(line[None, :, :], (HEIGHT, WIDTH, 3))
    return Image.fromarray(np.ascontiguousarray(pixels))


def _long_hair(pen: _Pen, shape: Geometry, hair: tuple[int, ...]) -> None:
    width = shape.face_rx + 14
    pen.polygon(np.array([[-width, shape.face_top + 20], [width, shape.face_top + 20],
                          [width + 6, 112], [-width - 6, 112]]), hair)


def _hair_cap(shape: Geometry) -> np.ndarray:
    """The hair around the top of the head (drawn behind the face)."""
    return _CIRCLE * (shape.face_rx + 5, 52) + (0, shape.face_top + 36)


def _hairline(pen: _Pen, shape: Geometry, hair: tuple[int, ...]) -> None:
    """The hair over the top of the forehead, down to a hairline 16 px above the eyebrows."""
    cap = _hair_cap(shape)
    hairline = -32.0
    cap[:, 1] = np.minimum(cap[:, 1], hairline + 6 * (np.abs(cap[:, 0]) / shape.face_rx) ** 2)
    pen.polygon(cap, hair)


def _bangs(pen: _Pen, shape: Geometry, hair: tuple[int, ...], edge: tuple[float, ...]) -> None:
    """A fringe from the hairline down to just above the eyebrows, with a ragged edge."""
    half = shape.face_rx * 0.9
    xs = np.linspace(half, -half, len(edge))
    bottom = np.stack([xs, -17 + np.array(edge) - 4 * (xs / half) ** 2], axis=1)
    top = np.array([[-half - 2, -34.0], [0, -40.0], [half + 2, -34.0]])
    pen.polygon(np.concatenate([top, bottom]), hair)


def _wrinkles(pen: _Pen, shape: Geometry, skin: tuple[int, ...]) -> None:
    """Forehead lines, smile folds, crow's feet and bags under the eyes of an older face."""
    crease = _mix(skin, (0.68, 0.64, 0.64))
    for y in (-21, -27):
        pen.line(np.array([[-24, y + 1], [0, y], [24, y + 1]]), crease, 3.5)
    for side in (-1, 1):
        pen.line(np.array([[side * 9, 27], [side * 17, 38], [side * 21, 50]]), crease, 4)
        pen.line(np.array([[side * 29, -3], [side * 36, -6]]), crease, 2.5)
        pen.ellipse(side * 19.5, 6.5, 9, 3, _mix(skin, (0.8, 0.76, 0.78)))


def _full_beard_shape(pen: _Pen, shape: Geometry, colour: tuple[int, ...]) -> None:
    """Stubble over the jaw, cheeks and chin, leaving the mouth and upper cheeks clear."""
    outline = _face_outline(shape, True)
    jaw = outline[(outline[:, 1] > 22)]
    inner = jaw * (0.72, 0.75) + (0, 10)
    pen.polygon(np.concatenate([jaw, inner[::-1]]), colour)


def _eyes(pen: _Pen, shape: Geometry, face: Face, brows: tuple[int, ...]) -> None:
    iris = IRISES[face.look.iris]
    thickness = 4.5 if face.has("Male") else 3.0
    for (x, y), side in zip(shape.eyes, (-1, 1)):
        pen.ellipse(x, y, 8, 4, (240, 240, 236))
        pen.ellipse(x, y, 3.6, 3.6, iris)
        pen.ellipse(x, y, 1.5, 1.5, (10, 10, 10))
        pen.line(np.array([[x - side * 10, y - 10], [x, y - 13], [x + side * 10, y - 11]]),
                 brows, thickness)


def _mouth(pen: _Pen, shape: Geometry, face: Face, skin: tuple[int, ...]) -> None:
    """Lips around the mouth line; an open mouth shows a dark gap, with teeth when smiling."""
    (left_x, corner_y), (right_x, _) = shape.mouth_corners
    xs = np.linspace(left_x, right_x, 13)
    bulge = 1 - (xs / right_x) ** 2  # 0 at the corners, 1 in the middle
    middle = corner_y + (shape.mouth_middle_y - corner_y) * bulge
    gap = face.look.mouth_opening * np.sqrt(bulge) if face.has("Mouth_Slightly_Open") else 0 * xs
    lips = face.look.lipstick if face.has("Wearing_Lipstick") else _mix(skin, (0.85, 0.62, 0.62))
    upper = np.stack([xs, middle - 4.5 * np.sqrt(bulge) - 0.5], axis=1)
    lower = np.stack([xs, middle + gap + 5.0 * np.sqrt(bulge) + 0.5], axis=1)
    pen.polygon(np.concatenate([upper, lower[::-1]]), lips)
    if face.has("Mouth_Slightly_Open"):
        opening = np.concatenate([np.stack([xs, middle], 1), np.stack([xs, middle + gap], 1)[::-1]])
        pen.polygon(opening, (58, 18, 24))
        if face.has("Smiling"):
            teeth = np.concatenate([np.stack([xs, middle], 1),
                                    np.stack([xs, middle + gap * 0.4], 1)[::-1]])
            pen.polygon(teeth, (236, 234, 226))
    else:
        pen.line(np.stack([xs, middle], axis=1), _mix(lips, (0.55, 0.5, 0.5)), 2.2)


def _mustache(pen: _Pen, shape: Geometry, colour: tuple[int, ...]) -> None:
    (left_x, corner_y), (right_x, _) = shape.mouth_corners
    top = np.array([[left_x - 1, corner_y - 3], [-4, 27.5], [4, 27.5], [right_x + 1, corner_y - 3]])
    bottom = np.array([[right_x + 2, corner_y + 1], [0, shape.mouth_middle_y - 4.2],
                       [left_x - 2, corner_y + 1]])
    pen.polygon(np.concatenate([top, bottom]), colour)


def _goatee(pen: _Pen, shape: Geometry, colour: tuple[int, ...]) -> None:
    top = shape.mouth_middle_y + 7
    chin = shape.chin - 3
    pen.polygon(np.array([[-11, top], [11, top], [9, chin - 4], [0, chin], [-9, chin - 4]]),
                colour)


def _glasses(pen: _Pen, shape: Geometry, look: Look) -> None:
    """Two frames around the eyes, a bridge and the temples, optionally with dark lenses."""
    half_w, half_h = look.glasses_size
    power = 2 / look.glasses_squareness  # superellipse: 1 is an ellipse, smaller is squarer
    rim = np.sign(_CIRCLE) * np.abs(_CIRCLE) ** power * (half_w, half_h)
    for x, y in shape.eyes:
        lens = rim + (x, y)
        if look.glasses_tinted:
            pen.polygon(lens, tuple(c // 3 for c in look.glasses_colour))
        pen.line(np.concatenate([lens, lens[:1]]), look.glasses_colour, look.glasses_thickness)
    (lx, ly), (rx, _) = shape.eyes
    pen.line(np.array([[lx + half_w, ly - 2], [0, ly - 4], [rx - half_w, ly - 2]]),
             look.glasses_colour, look.glasses_thickness * 0.8)
    for side in (-1, 1):
        pen.line(np.array([[side * (rx + half_w), ly - 2], [side * shape.face_rx, ly - 4]]),
                 look.glasses_colour, look.glasses_thickness * 0.8)


def _hat(pen: _Pen, shape: Geometry, look: Look) -> None:
    """A crown over the top of the head and a brim across the forehead."""
    brim_y = -30.0
    crown = _CIRCLE * (shape.face_rx + 6, look.hat_height) + (0, brim_y)
    crown[:, 1] = np.minimum(crown[:, 1], brim_y)
    pen.polygon(crown, look.hat_colour)
    pen.ellipse(0, brim_y, shape.face_rx + look.hat_brim, 6, _mix(look.hat_colour, (0.8,) * 3))


@lru_cache(maxsize=1)
def _noise_texture() -> np.ndarray:
    """A fixed field of unit Gaussian noise; each photo uses a window of it (fast, seedless)."""
    field = np.random.default_rng(20240601).standard_normal((HEIGHT + 40, WIDTH + 80, 3))
    return field.astype(np.float32)


def finish(face: Face, image: Image.Image) -> np.ndarray:
    """Lighting and sensor noise on top of the drawing: (218, 178, 3) uint8."""
    look = face.look
    pixels = np.asarray(image, dtype=np.float32)
    across = np.linspace(-0.5, 0.5, WIDTH, dtype=np.float32)
    light = look.brightness * (1 + look.light_slope * across)  # light from one side
    oy, ox = look.noise_offset
    noise = _noise_texture()[oy:oy + HEIGHT, ox:ox + WIDTH]
    pixels = pixels * light[None, :, None] + look.noise_sigma * noise
    return np.clip(pixels, 0, 255).astype(np.uint8)


def encode(face: Face) -> bytes:
    """The face as the JPEG bytes written to disk."""
    buffer = io.BytesIO()
    Image.fromarray(finish(face, render(face))).save(buffer, "JPEG", quality=face.look.jpeg_quality)
    return buffer.getvalue()
