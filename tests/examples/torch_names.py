#!/usr/bin/python3
"""torch_names.py -- the state_dict of each example's reference implementation: one line
"NAME f32[SHAPE]" per tensor, sorted. Written from the module structure of torchvision
(resnet.py, mobilenetv2.py, inception.py) and HuggingFace's GPT2Block, without importing
either, so the example files can be checked against it. `num_batches_tracked` (an int64
counter nnc does not keep) and GPT-2's constant `attn.bias` mask buffer are left out.

Usage: torch_names.py NET
"""
import sys

out = []


def t(name, *shape):
    out.append(f"{name} f32[{','.join(str(d) for d in shape)}]")


def conv(p, o, i, k, bias=False, groups=1):
    t(f"{p}.weight", o, i // groups, k, k)
    if bias:
        t(f"{p}.bias", o)


def bn(p, c):
    for s in ("weight", "bias", "running_mean", "running_var"):
        t(f"{p}.{s}", c)


def linear(p, o, i):
    t(f"{p}.weight", o, i)
    t(f"{p}.bias", o)


def resnet(blocks, bottleneck):
    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    cin = 64
    for li, (n, w) in enumerate(zip(blocks, (64, 128, 256, 512)), 1):
        cout = 4 * w if bottleneck else w
        for b in range(n):
            p = f"layer{li}.{b}"
            if bottleneck:
                conv(f"{p}.conv1", w, cin, 1)
                bn(f"{p}.bn1", w)
                conv(f"{p}.conv2", w, w, 3)
                bn(f"{p}.bn2", w)
                conv(f"{p}.conv3", cout, w, 1)
                bn(f"{p}.bn3", cout)
            else:
                conv(f"{p}.conv1", w, cin, 3)
                bn(f"{p}.bn1", w)
                conv(f"{p}.conv2", w, w, 3)
                bn(f"{p}.bn2", w)
            if b == 0 and (cin != cout or li > 1):
                conv(f"{p}.downsample.0", cout, cin, 1)
                bn(f"{p}.downsample.1", cout)
            cin = cout
    linear("fc", 1000, cin)


def mobilenet_v2():
    # torchvision inverted_residual_setting: t, c, n, s
    setting = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1)]
    conv("features.0.0", 32, 3, 3)
    bn("features.0.1", 32)
    cin, k = 32, 1
    for tt, c, n, _ in setting:
        for _ in range(n):
            p, h, j = f"features.{k}.conv", cin * tt, 0
            if tt != 1:
                conv(f"{p}.0.0", h, cin, 1)
                bn(f"{p}.0.1", h)
                j = 1
            conv(f"{p}.{j}.0", h, h, 3, groups=h)
            bn(f"{p}.{j}.1", h)
            conv(f"{p}.{j + 1}", c, h, 1)
            bn(f"{p}.{j + 2}", c)
            cin, k = c, k + 1
    conv(f"features.{k}.0", 1280, cin, 1)
    bn(f"features.{k}.1", 1280)
    linear("classifier.1", 1000, 1280)


def inception_a():
    def basic(p, o, i, k):
        conv(f"{p}.conv", o, i, k)
        bn(f"{p}.bn", o)

    for m, cin, pf in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        basic(f"{m}.branch1x1", 64, cin, 1)
        basic(f"{m}.branch5x5_1", 48, cin, 1)
        basic(f"{m}.branch5x5_2", 64, 48, 5)
        basic(f"{m}.branch3x3dbl_1", 64, cin, 1)
        basic(f"{m}.branch3x3dbl_2", 96, 64, 3)
        basic(f"{m}.branch3x3dbl_3", 96, 96, 3)
        basic(f"{m}.branch_pool", pf, cin, 1)


def gpt2_block(d=768):
    # transformers' Conv1D keeps weight as [nx_in, nf_out]
    def conv1d(p, i, o):
        t(f"{p}.weight", i, o)
        t(f"{p}.bias", o)

    for ln in ("ln_1", "ln_2"):
        t(f"{ln}.weight", d)
        t(f"{ln}.bias", d)
    conv1d("attn.c_attn", d, 3 * d)
    conv1d("attn.c_proj", d, d)
    conv1d("mlp.c_fc", d, 4 * d)
    conv1d("mlp.c_proj", 4 * d, d)


def mlp():
    linear("fc1", 512, 784)
    linear("fc2", 10, 512)


def lenet():
    conv("conv1", 6, 1, 5, bias=True)
    conv("conv2", 16, 6, 5, bias=True)
    linear("fc1", 120, 400)
    linear("fc2", 84, 120)
    linear("fc3", 10, 84)


NETS = {"resnet18": lambda: resnet((2, 2, 2, 2), False),
        "resnet50": lambda: resnet((3, 4, 6, 3), True),
        "mobilenet_v2": mobilenet_v2, "inception_a": inception_a, "gpt2_block": gpt2_block,
        "mlp": mlp, "lenet": lenet}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in NETS:
        sys.exit(__doc__)
    NETS[sys.argv[1]]()
    print("\n".join(sorted(out)))
