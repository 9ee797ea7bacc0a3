"""The two networks SimCLR trains: the base encoder f and the projection head g.

SimCLR (Chen et al., 2020) passes two augmented views of each image through the same
**encoder** ``f`` to get representations ``h = f(x)``, then through a small MLP, the
**projection head** ``g``, to get ``z = g(h)``, on which the contrastive loss is computed.
After pre-training the head is thrown away: ``h`` is the representation that downstream tasks
(the linear probe, fine-tuning) use, and it is better than ``z`` for them (paper, section 4.2).

Encoders (all take float images in ``[0, 1]`` of shape ``[B, H, W, 3]`` and return ``h`` of
shape ``[B, D]`` in float32):

* ``resnet18``, ``resnet34``: ResNet v1 with basic blocks (two 3x3 convolutions),
  ``D = 512 * width``.
* ``resnet50``: ResNet v1 with bottleneck blocks (1x1, 3x3, 1x1 with 4x expansion),
  ``D = 2048 * width``. As in most modern implementations (and SimCLR's own), a stage's
  stride sits on the 3x3 convolution of its first block ("v1.5"); parameter counts are the same.
* ``small_cnn``: a plain CNN for fast runs on a laptop CPU: a 32-channel stem, then three
  stages of two 3x3 convolutions (64, 128 and 256 channels; the first of each stage has stride
  2, so 32x32 images are processed at 16x16, 8x8 and 4x4), each with BatchNorm and ReLU,
  ``D = 256 * width``. It costs about 13x fewer multiply-adds than the CIFAR ResNet-18
  (43 M against 555 M per 32x32 image) and runs several times faster on a 2-core CPU
  (``benchmarks/bare_step.py``).

``representation_dim`` widens ``h`` cheaply: a 1x1 convolution (with BatchNorm and ReLU) to
that many channels on the last feature map, before the global pooling, as MobileNet and
EfficientNet end. Because the ReLU acts at every position before the pooling, the new channels
are features of their own, not a linear mix of the old ones that a linear probe could form
itself. On ``small_cnn`` a 1024-channel expansion adds about 10 % to the multiply-adds.

The **width multiplier** multiplies the number of channels of every convolution (SimCLR's
ResNet-50 (2x) and (4x)). The **stem**, the first layer(s) of the encoder, depends on the image
size: ImageNet-sized images go through a 7x7 stride-2 convolution and a 3x3 stride-2 max-pool,
which shrink them 4x at once; for 32x32 CIFAR images that would throw away most of the
picture, so the CIFAR stem is a single 3x3 stride-1 convolution without max-pool (paper,
appendix B.9). ``stem="auto"`` picks the CIFAR stem for images of 32 px or less.

Details that matter for training:

* Images are rescaled from ``[0, 1]`` to ``[-1, 1]`` by the first layer, so no data statistics
  are needed at run time.
* An encoder is built for ``image_size`` (its ``input_shape``, which exports and evaluation
  use), but being convolutions and a global pooling it also runs on other sizes: pretraining
  with ``view_size_ratio < 1`` feeds it smaller views (24x24 crops of 32x32 images in the
  ``cpu`` preset).
* Convolutions have no bias (the BatchNorm after each one has its own shift ``beta``).
* The last BatchNorm of every residual block starts with ``gamma = 0``, so each block starts as
  the identity, which makes early training of deep ResNets more stable (Goyal et al., 2017;
  the SimCLR code does the same).
* BatchNorm uses momentum 0.9 and epsilon 1e-5 as in SimCLR. With
  ``sync_batchnorm=True`` its batch statistics are computed over the global batch of
  all replicas of a ``tf.distribute`` strategy ("global BN", paper section B.1), so that a
  replica cannot find a shortcut to the contrastive task through its local batch statistics.
* Under a mixed-precision policy (``keras.mixed_precision.set_global_policy``, called before
  the models are built) the convolutions run in float16/bfloat16, BatchNorm computes its
  statistics in float32 (Keras does this itself), and both models end with a float32 layer, so
  ``h`` and ``z`` are always float32.
"""

from __future__ import annotations

import numbers

import keras

from simclr_tf.config import ENCODERS as ENCODER_NAMES
from simclr_tf.config import STEMS as STEM_NAMES
from simclr_tf.config import SimCLRConfig

# Largest image side for which stem="auto" picks the CIFAR stem.
CIFAR_STEM_MAX_IMAGE_SIZE = 32

BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5

# (block type, blocks per stage) of each ResNet; stages have 64, 128, 256, 512 base channels.
_RESNET_LAYOUTS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
_RESNET_STAGE_CHANNELS = (64, 128, 256, 512)
_BOTTLENECK_EXPANSION = 4

# small_cnn: a 32-channel stem, then stages of two 3x3 convolutions, the first with stride 2.
_SMALL_CNN_STEM_CHANNELS = 32
_SMALL_CNN_STAGE_CHANNELS = (64, 128, 256)


def resolve_stem(stem: str, image_size: int) -> str:
    """Returns the stem to use, "cifar" or "imagenet", resolving "auto" by image size.

    Args:
        stem: "auto", "cifar" or "imagenet".
        image_size: side of the square input images, in pixels.

    Returns:
        "cifar" for ``stem="auto"`` and images of at most 32 px, "imagenet" for larger ones,
        else ``stem`` itself.

    Raises:
        ValueError: for an unknown ``stem``.
    """
    if stem not in STEM_NAMES:
        raise ValueError(f"stem must be one of {', '.join(STEM_NAMES)}; received stem={stem!r}.")
    if stem != "auto":
        return stem
    return "cifar" if image_size <= CIFAR_STEM_MAX_IMAGE_SIZE else "imagenet"


def _batch_norm(name: str, synchronized: bool, zero_gamma: bool = False) -> keras.layers.Layer:
    """A BatchNorm layer with SimCLR's settings (optionally starting with gamma = 0)."""
    return keras.layers.BatchNormalization(
        momentum=BATCH_NORM_MOMENTUM,
        epsilon=BATCH_NORM_EPSILON,
        gamma_initializer="zeros" if zero_gamma else "ones",
        synchronized=synchronized,
        name=name,
    )


def _conv(channels: int, kernel_size: int, stride: int, name: str) -> keras.layers.Layer:
    """A bias-free 'same'-padded convolution with He initialisation."""
    return keras.layers.Conv2D(
        channels,
        kernel_size,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )


def _conv_bn_relu(x, channels: int, kernel_size: int, stride: int, name: str, sync: bool):
    x = _conv(channels, kernel_size, stride, f"{name}_conv")(x)
    x = _batch_norm(f"{name}_bn", sync)(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _stem(x, stem: str, channels: int, sync: bool):
    """The first layers: 3x3 stride-1 conv (CIFAR) or 7x7 stride-2 conv + max-pool (ImageNet)."""
    if stem == "cifar":
        return _conv_bn_relu(x, channels, 3, 1, "stem", sync)
    x = _conv_bn_relu(x, channels, 7, 2, "stem", sync)
    return keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)


def _shortcut(x, out_channels: int, stride: int, name: str, sync: bool):
    """Identity, or a 1x1 projection when the block changes the shape."""
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    x = _conv(out_channels, 1, stride, f"{name}_shortcut_conv")(x)
    return _batch_norm(f"{name}_shortcut_bn", sync)(x)


def _basic_block(x, channels: int, stride: int, name: str, sync: bool):
    """Two 3x3 convolutions and a residual connection (ResNet-18/34)."""
    shortcut = _shortcut(x, channels, stride, name, sync)
    y = _conv_bn_relu(x, channels, 3, stride, f"{name}_1", sync)
    y = _conv(channels, 3, 1, f"{name}_2_conv")(y)
    y = _batch_norm(f"{name}_2_bn", sync, zero_gamma=True)(y)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _bottleneck_block(x, channels: int, stride: int, name: str, sync: bool):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, residual connection (ResNet-50)."""
    out_channels = channels * _BOTTLENECK_EXPANSION
    shortcut = _shortcut(x, out_channels, stride, name, sync)
    y = _conv_bn_relu(x, channels, 1, 1, f"{name}_1", sync)
    y = _conv_bn_relu(y, channels, 3, stride, f"{name}_2", sync)
    y = _conv(out_channels, 1, 1, f"{name}_3_conv")(y)
    y = _batch_norm(f"{name}_3_bn", sync, zero_gamma=True)(y)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _resnet_body(x, name: str, stem: str, width: int, sync: bool):
    block_type, blocks_per_stage = _RESNET_LAYOUTS[name]
    block = _basic_block if block_type == "basic" else _bottleneck_block
    x = _stem(x, stem, 64 * width, sync)
    for stage, (channels, blocks) in enumerate(
        zip(_RESNET_STAGE_CHANNELS, blocks_per_stage, strict=True), start=1
    ):
        for index in range(1, blocks + 1):
            stride = 2 if stage > 1 and index == 1 else 1
            x = block(x, channels * width, stride, f"stage{stage}_block{index}", sync)
    return x


def _small_cnn_body(x, stem: str, width: int, sync: bool):
    x = _stem(x, stem, _SMALL_CNN_STEM_CHANNELS * width, sync)
    for stage, channels in enumerate(_SMALL_CNN_STAGE_CHANNELS, start=1):
        x = _conv_bn_relu(x, channels * width, 3, 2, f"stage{stage}_1", sync)
        x = _conv_bn_relu(x, channels * width, 3, 1, f"stage{stage}_2", sync)
    return x


def encoder_output_dim(name: str, width: int = 1, representation_dim: int = 0) -> int:
    """Width D of the representation ``h`` an encoder returns.

    Args:
        name: one of "resnet18", "resnet34", "resnet50", "small_cnn".
        width: width multiplier.
        representation_dim: the encoder's ``representation_dim`` (0: its own width).

    Returns:
        ``representation_dim`` when it is not 0; else 512 * width for ResNet-18/34,
        2048 * width for ResNet-50, 256 * width for small_cnn.

    Raises:
        ValueError: for an unknown ``name``.
    """
    if name not in ENCODER_NAMES:
        raise ValueError(f"name must be one of {', '.join(ENCODER_NAMES)}; received name={name!r}.")
    if representation_dim:
        return int(representation_dim)
    if name == "small_cnn":
        return _SMALL_CNN_STAGE_CHANNELS[-1] * width
    expansion = _BOTTLENECK_EXPANSION if _RESNET_LAYOUTS[name][0] == "bottleneck" else 1
    return _RESNET_STAGE_CHANNELS[-1] * expansion * width


def build_encoder(
    name: str,
    image_size: int,
    width: int = 1,
    stem: str = "auto",
    sync_batchnorm: bool = False,
    representation_dim: int = 0,
) -> keras.Model:
    """Builds the base encoder f (named "encoder").

    Args:
        name: "resnet18", "resnet34", "resnet50" or "small_cnn".
        image_size: side of the square input images, in pixels (> 0).
        width: width multiplier of every convolution (>= 1).
        stem: "auto" (CIFAR stem for images of at most 32 px, else ImageNet stem), "cifar" or
            "imagenet".
        sync_batchnorm: compute BatchNorm statistics over all replicas of the current
            ``tf.distribute`` strategy.
        representation_dim: 0 keeps the encoder's own width of ``h``; a positive value adds a
            1x1 convolution + BatchNorm + ReLU to that many channels before the pooling.

    Returns:
        A Keras model mapping float images in [0, 1], ``[B, image_size, image_size, 3]``, to the
        global-average-pooled representation ``h``,
        ``[B, encoder_output_dim(name, width, representation_dim)]``, float32 whatever the
        global dtype policy. Its ``input_shape`` is ``image_size``, but it also accepts other
        image sizes ``[B, H, W, 3]`` (pretraining on smaller views does).

    Raises:
        ValueError: for an unknown ``name`` or ``stem``, ``image_size <= 0``, ``width < 1`` or
            ``representation_dim < 0``.
    """
    if name not in ENCODER_NAMES:
        raise ValueError(f"name must be one of {', '.join(ENCODER_NAMES)}; received name={name!r}.")
    if not isinstance(image_size, numbers.Integral) or image_size <= 0:
        raise ValueError(
            f"image_size must be a positive integer (pixels); received image_size={image_size!r}."
        )
    if not isinstance(width, numbers.Integral) or width < 1:
        raise ValueError(f"width must be an integer >= 1; received width={width!r}.")
    if not isinstance(representation_dim, numbers.Integral) or representation_dim < 0:
        raise ValueError(
            "representation_dim must be an integer >= 0 (0: the encoder's own width); "
            f"received representation_dim={representation_dim!r}."
        )
    stem = resolve_stem(stem, image_size)

    image_size, width = int(image_size), int(width)
    images = keras.Input(shape=(image_size, image_size, 3), name="images")
    # [0, 1] -> [-1, 1]: a fixed affine map, no data statistics needed.
    x = keras.layers.Rescaling(scale=2.0, offset=-1.0, name="rescale")(images)
    if name == "small_cnn":
        x = _small_cnn_body(x, stem, width, sync_batchnorm)
    else:
        x = _resnet_body(x, name, stem, width, sync_batchnorm)
    if representation_dim:
        x = _conv_bn_relu(x, int(representation_dim), 1, 1, "expand", sync_batchnorm)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    representation = keras.layers.Activation("linear", dtype="float32", name="representation")(x)
    encoder = keras.Model(images, representation, name="encoder")
    # Every layer is a convolution, a normalisation or the global pooling, so the network is
    # defined for any image size. The declared input shape stays [image_size, image_size, 3]
    # (what exports and evaluation resize to); only the check on calls is relaxed, so that
    # pretraining can run on smaller views (SimCLRConfig.view_size).
    encoder.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: 3})
    return encoder


def build_projection_head(
    input_dim: int,
    hidden_dim: int = 0,
    output_dim: int = 128,
    num_layers: int = 2,
    sync_batchnorm: bool = False,
) -> keras.Model:
    """Builds the projection head g (named "projection_head").

    ``num_layers - 1`` hidden layers (Dense without bias, BatchNorm, ReLU), then a linear Dense
    layer to ``output_dim``. Two layers is SimCLR v1's head, three SimCLR v2's; one layer is a
    linear projection.

    Args:
        input_dim: width of the representation h (> 0).
        hidden_dim: width of the hidden layers; 0 means ``input_dim``.
        output_dim: width of z (> 0); the paper uses 128.
        num_layers: number of Dense layers (>= 1).
        sync_batchnorm: compute BatchNorm statistics over all replicas.

    Returns:
        A Keras model mapping ``h`` ``[B, input_dim]`` to ``z`` ``[B, output_dim]``, float32.

    Raises:
        ValueError: if a size is out of range.
    """
    for arg_name, value, minimum in (
        ("input_dim", input_dim, 1),
        ("hidden_dim", hidden_dim, 0),
        ("output_dim", output_dim, 1),
        ("num_layers", num_layers, 1),
    ):
        if not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(
                f"{arg_name} must be an integer >= {minimum}; received {arg_name}={value!r}."
            )
    input_dim, output_dim = int(input_dim), int(output_dim)
    hidden_dim = int(hidden_dim) or input_dim

    representation = keras.Input(shape=(input_dim,), name="representation")
    x = representation
    for index in range(1, num_layers):
        x = keras.layers.Dense(hidden_dim, use_bias=False, name=f"hidden{index}_dense")(x)
        x = _batch_norm(f"hidden{index}_bn", sync_batchnorm)(x)
        x = keras.layers.ReLU(name=f"hidden{index}_relu")(x)
    x = keras.layers.Dense(output_dim, name="output_dense")(x)
    projection = keras.layers.Activation("linear", dtype="float32", name="projection")(x)
    return keras.Model(representation, projection, name="projection_head")


def encoder_from_config(config: SimCLRConfig, sync_batchnorm: bool = False) -> keras.Model:
    """The base encoder a run configuration describes: the one way to rebuild it.

    Args:
        config: a run's configuration (its ``encoder``, ``image_size``, ``width``, ``stem`` and
            ``representation_dim`` fields).
        sync_batchnorm: synchronise BatchNorm statistics over the replicas.

    Returns:
        The encoder of :func:`build_encoder`, with fresh weights.
    """
    return build_encoder(
        config.encoder,
        config.image_size,
        width=config.width,
        stem=config.stem,
        representation_dim=config.representation_dim,
        sync_batchnorm=sync_batchnorm,
    )


def projection_head_from_config(
    config: SimCLRConfig, input_dim: int, sync_batchnorm: bool = False
) -> keras.Model:
    """The projection head a run configuration describes, on ``h`` of width ``input_dim``."""
    return build_projection_head(
        input_dim,
        hidden_dim=config.projection_hidden_dim,
        output_dim=config.projection_dim,
        num_layers=config.projection_layers,
        sync_batchnorm=sync_batchnorm,
    )


def initialize_weights(model: keras.Model, seed: int) -> keras.Model:
    """Draws every kernel of ``model`` anew from its own initializer, seeded.

    Keras initializers without a seed draw from a global generator, so the weights a model
    starts with would depend on what was built before it, unless the global generators are
    reseeded. This function makes them a function of ``seed`` alone, without touching any
    global state: layer ``i`` (in ``model.layers`` order, nested models included) draws its
    kernel with seed ``(seed, i)``. Biases and BatchNorm parameters keep their constant
    initial values.

    Args:
        model: a built Keras model.
        seed: the seed of the weights.

    Returns:
        ``model``, with its kernels re-drawn in place.
    """
    for index, layer in enumerate(_flat_layers(model)):
        initializer = getattr(layer, "kernel_initializer", None)
        kernel = getattr(layer, "kernel", None)
        if initializer is None or kernel is None:
            continue
        config = {**initializer.get_config(), "seed": int(seed) * 100_003 + index}
        seeded = type(initializer).from_config(config)
        kernel.assign(seeded(kernel.shape, dtype=kernel.dtype))
    return model


def _flat_layers(model: keras.Model) -> list[keras.layers.Layer]:
    layers = []
    for layer in model.layers:
        layers.extend(_flat_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return layers
