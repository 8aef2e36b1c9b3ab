"""CelebA's 40 attribute names, in file order, and name lookup with helpful errors."""

from __future__ import annotations

import difflib

from featurechanger.errors import ConfigError

ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes",
    "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
ATTRIBUTE_INDEX: dict[str, int] = {name: i for i, name in enumerate(ATTRIBUTES)}

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}


def attribute_index(name: str) -> int:
    """Return the column of `name`, or raise an error that lists the valid names and the closest."""
    if name in ATTRIBUTE_INDEX:
        return ATTRIBUTE_INDEX[name]
    folded = {n.lower(): n for n in ATTRIBUTES}
    if name.lower() in folded:
        return ATTRIBUTE_INDEX[folded[name.lower()]]
    close = difflib.get_close_matches(name, ATTRIBUTES, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"Unknown attribute {name!r}.{hint} Valid names: {', '.join(ATTRIBUTES)}."
    )


def canonical_attribute(name: str) -> str:
    """Return CelebA's spelling of `name` (case-insensitive), or raise as attribute_index does."""
    return ATTRIBUTES[attribute_index(name)]


def split_code(name: str) -> int | None:
    """Map 'train'/'val'/'test' to CelebA's partition code; 'all' gives None (every split)."""
    if name == "all":
        return None
    if name not in SPLITS:
        raise ConfigError(f"Unknown split {name!r}. Valid values are {{train, val, test, all}}.")
    return SPLITS[name]
