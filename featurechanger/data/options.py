"""The data options the CLI offers (layouts, crops, images per shard), apart from the code that
reads images, which needs numpy and Pillow: `--help` and the commands that read no images stay
light (a test keeps these equal to what celeba and images implement)."""

LAYOUT_NAMES: tuple[str, ...] = ("kaggle", "original")  # celeba.LAYOUTS
CROPS: tuple[str, ...] = ("center", "face", "squash")  # images.crop_box
DEFAULT_CROP = "center"
DEFAULT_SHARD_SIZE = 2048  # images per shard: the unit of work of a distributed job
