#!/usr/bin/env bash
# run_params.sh — `nnc check` passes on every example, and each parameter count equals the
# published figure of the reference implementation (torchvision, HuggingFace GPT-2) or a
# formula derived here by hand from the layer shapes. The counts are trainable parameters,
# i.e. sum(p.numel() for p in model.parameters()) in PyTorch; batchnorm running statistics
# are buffers and are checked separately where the figure is known.
set -u
: "${NNC:?set NNC to the nnc binary}" "${NNC_SRC:?set NNC_SRC to the source tree}"
EX="$NNC_SRC/examples"
fail=0

# count FILE [-D ...] -> "TRAINABLE BUFFERS" of the file's first model line
count() {
  local out
  if ! out=$("$NNC" check "$@" 2>&1); then
    echo "FAIL: nnc check $* exited non-zero:" >&2
    echo "$out" >&2
    return 1
  fi
  # "model NAME: 11,689,512 parameters (+9,600 in buffers), dims N=8"
  local line
  line=$(printf '%s\n' "$out" | grep -m1 '^model ')
  local p b
  p=$(printf '%s\n' "$line" | sed -n 's/^model [^:]*: \([0-9,]*\) parameters.*/\1/p' | tr -d ,)
  b=$(printf '%s\n' "$line" | sed -n 's/.*(+\([0-9,]*\) in buffers).*/\1/p' | tr -d ,)
  [ -n "$p" ] || { echo "FAIL: cannot read the parameter count of $*: $line" >&2; return 1; }
  echo "$p ${b:-0}"
}

# expect NAME WANT_PARAMS WANT_BUFFERS|- FILE [-D ...]
expect() {
  local name=$1 want=$2 wantb=$3
  shift 3
  local got
  got=$(count "$@") || { fail=1; return; }
  local p=${got% *} b=${got#* }
  if [ "$p" != "$want" ]; then
    echo "FAIL: $name: nnc check reports $p parameters, the reference has $want" >&2
    fail=1
  elif [ "$wantb" != - ] && [ "$b" != "$wantb" ]; then
    echo "FAIL: $name: nnc check reports $b buffer elements, the reference has $wantb" >&2
    fail=1
  else
    echo "ok: $name: $p parameters, $b buffer elements"
  fi
}

# --- linreg: w f32[D]: D ----------------------------------------------------------------
expect linreg 50 0 "$EX/linreg.nn"
expect "linreg -D D=7" 7 0 "$EX/linreg.nn" -D D=7

# --- mlp: dense 784->512 (W 512x784 + b 512), dense 512->10 (W 10x512 + b 10) -------------
expect mlp $((784 * 512 + 512 + 512 * 10 + 10)) 0 "$EX/mlp.nn"         # 407,050

# --- LeNet-5 (28x28 input, conv1 padded): a conv with O filters of CxKxK has O*C*K*K + O ----
#   conv1 1->6 5x5: 6*1*25+6 = 156        conv2 6->16 5x5: 16*6*25+16 = 2,416
#   fc1 16*5*5=400->120: 48,120   fc2 120->84: 10,164   fc3 84->10: 850      total 61,706
lenet=$((6 * 1 * 25 + 6 + 16 * 6 * 25 + 16 + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10))
expect lenet "$lenet" 0 "$EX/lenet.nn"

# --- torchvision figures (sum of parameters(); buffers = running_mean + running_var, i.e.
#     2 x the channels of every BatchNorm2d, without num_batches_tracked) --------------------
# resnet18 BN channels: bn1 64 + layer1 4*64 + layer2 (4+1)*128 + layer3 5*256 + layer4 5*512
expect resnet18 11689512 $((2 * (64 + 4 * 64 + 5 * 128 + 5 * 256 + 5 * 512))) "$EX/resnet18.nn"
# resnet50 BN channels: bn1 64; a bottleneck of width w has bn1 w, bn2 w, bn3 4w, and the
# first block of each layer a downsample BN of 4w: layer i has blocks b_i = 3,4,6,3 and
# width w_i = 64,128,256,512 -> b_i*6w_i + 4w_i
r50bn=$((64 + 3 * 6 * 64 + 4 * 64 + 4 * 6 * 128 + 4 * 128 + 6 * 6 * 256 + 4 * 256 \
         + 3 * 6 * 512 + 4 * 512))
expect resnet50 25557032 $((2 * r50bn)) "$EX/resnet50.nn"
# mobilenet_v2 BN channels: stem 32; features.1 32 + 16; an inverted residual cin -> cout with
# expansion 6 has 6cin (expand) + 6cin (depthwise) + cout (projection); features.18 1280
mbn=$((32 + 32 + 16 + 1280))
for io in 16:24 24:24 24:32 32:32 32:32 32:64 64:64 64:64 64:64 64:96 96:96 96:96 96:160 \
          160:160 160:160 160:320; do
  mbn=$((mbn + 12 * ${io%:*} + ${io#*:}))
done
expect mobilenet_v2 3504872 $((2 * mbn)) "$EX/mobilenet_v2.nn"

# --- Inception-v3 Mixed_5b, 5c, 5d (torchvision InceptionA(in_channels, pool_features)) ----
# every conv is BasicConv2d: conv without bias (o*i*k*k) + BatchNorm (weight, bias: 2o).
#   branch1x1      in->64 1x1               64*in + 128
#   branch5x5_1/2  in->48 1x1, 48->64 5x5   48*in + 96 + 64*48*25 + 128
#   branch3x3dbl   in->64 1x1, 64->96 3x3, 96->96 3x3
#                                           64*in + 128 + 96*64*9 + 192 + 96*96*9 + 192
#   branch_pool    in->pf 1x1               pf*in + 2*pf
# sum: in*(176 + pf) + 2*pf + 215,904
inception_a() { echo $(($1 * (176 + $2) + 2 * $2 + 64 * 48 * 25 + 96 * 64 * 9 + 96 * 96 * 9 \
                        + 128 + 96 + 128 + 128 + 192 + 192)); }
mixed5=$(($(inception_a 192 32) + $(inception_a 256 64) + $(inception_a 288 64)))
# BN channels per module: 64 + 48 + 64 + 64 + 96 + 96 + pf = 432 + pf
expect inception_a "$mixed5" $((2 * ((432 + 32) + (432 + 64) + (432 + 64)))) "$EX/inception_a.nn"

# --- GPT-2 block (HuggingFace GPT2Block, d = n_embd): ln_1 2d, attn.c_attn d*3d + 3d,
#     attn.c_proj d*d + d, ln_2 2d, mlp.c_fc d*4d + 4d, mlp.c_proj 4d*d + d -> 12d^2 + 13d.
#     d = 768 (gpt2): 7,087,872 per block; d = 1024 (gpt2-medium, 16 heads of 64): 12,596,224.
gpt2() { echo $((12 * $1 * $1 + 13 * $1)); }
expect gpt2_block "$(gpt2 768)" 0 "$EX/gpt2_block.nn"
expect "gpt2_block -D H=16" "$(gpt2 1024)" 0 "$EX/gpt2_block.nn" -D H=16

# --- char_lm: 2 GPT-2 blocks with dense (nn.Linear) layers, d = 64, V = 65, T = 32; wte V*d
#     and wpe T*d, ln_f 2d; the output projection is tied to wte, so it adds nothing.
char_lm() { echo $(($1 * $3 + $2 * $3 + 2 * (12 * $3 * $3 + 13 * $3) + 2 * $3)); }
expect char_lm "$(char_lm 65 32 64)" 0 "$EX/char_lm.nn"
expect "char_lm -D K=32" "$(char_lm 65 32 128)" 0 "$EX/char_lm.nn" -D K=32

# every example in the directory is covered above, so a new one must be added here
for f in "$EX"/*.nn; do
  case $(basename "$f" .nn) in
  linreg | mlp | lenet | resnet18 | resnet50 | mobilenet_v2 | inception_a | gpt2_block | char_lm) ;;
  *) echo "FAIL: $f has no expected parameter count in run_params.sh" >&2; fail=1 ;;
  esac
done
exit $fail
