set -x
pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl > $OUT/pip.log 2>&1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
G=.gpu_runs
for d in "" "--bf16"; do
  tag=$( [ -z "$d" ] && echo fp32 || echo bf16 )
  /usr/bin/time -f "%e s" python -m attempt_dist.predict $G/ft --input $G/rte_in.jsonl --output $OUT/ft_cuda_$tag.jsonl --device cuda $d 2>> $OUT/times.txt
  /usr/bin/time -f "%e s" python -m attempt_dist.predict $G/attempt --input $G/mt_in.jsonl --output $OUT/attempt_cuda_$tag.jsonl --device cuda $d 2>> $OUT/times.txt
done
python - <<'PY' > $OUT/compare.json
import json, os
G, OUT = ".gpu_runs", os.environ["OUT"]
rows = lambda p: [json.loads(l) for l in open(p)]
res = {}
for run, ref in (("ft", f"{G}/ft_cpu.jsonl"), ("attempt", f"{G}/attempt_cpu.jsonl")):
    cpu = rows(ref)
    for tag in ("fp32", "bf16"):
        path = f"{OUT}/{run}_cuda_{tag}.jsonl"
        if not os.path.exists(path):
            res[f"{run}_{tag}"] = "missing"; continue
        gpu = rows(path)
        same = sum(a["prediction"] == b["prediction"] for a, b in zip(cpu, gpu))
        att = [abs(a["attention"][k] - b["attention"][k]) for a, b in zip(cpu, gpu) if "attention" in a for k in a["attention"]]
        res[f"{run}_{tag}"] = {"rows": len(gpu), "same_prediction": same, "max_attention_diff": max(att) if att else None}
print(json.dumps(res, indent=1))
PY
cat $OUT/compare.json $OUT/times.txt
