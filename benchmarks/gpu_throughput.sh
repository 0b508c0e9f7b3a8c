#!/usr/bin/env bash
# Issue 17's GPU table in one device call: benchmarks/throughput.py --gpu on a lent H100/H200.
#
# Before the call, here (once; the lent machine reaches no registry, and its python is 3.12
# with torch 2.11 but transformers 5.17 and no deepspeed): the trainer's missing packages as
# wheels for that python, in the ignored folder .whl/ (benchmarks/README.md, "Running the GPU
# checks"). Then the call, carrying it:
#
#     run(command="bash benchmarks/gpu_throughput.sh", carry=[".whl"], timeout_s=580)
#
# and back here, the report and the two profiles into benchmarks/results/ (see the README).
# Budget: the cells start within --deadline (390 s) and each is cut at --timeout (150 s), so the
# whole call ends before 580 s even when the last cell starts at the deadline. Eight files at
# most come back from $OUT: the report (.json, .md), four profile files, this log, gpu.txt.
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/throughput-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl > /tmp/pip.log 2>&1 \
    || { tail -20 /tmp/pip.log; exit 1; }
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$OUT/gpu.txt"
python3 -c "import deepspeed, transformers, torch; print('deepspeed', deepspeed.__version__, 'transformers', \
transformers.__version__, 'torch', torch.__version__)" || exit 1
python3 benchmarks/throughput.py --gpu --deadline 390 --timeout 150 --out "$OUT" --work-dir /tmp/throughput-work \
    2>&1 | tee "$OUT/log.txt"
