#!/bin/bash
# Second device run: sampling again with the float64 two-level CDF, the per-row-cache comparison,
# and the gemma-3-1b-sized sampling that the first run's time limit cut off.
set -o pipefail
cd "$(dirname "$0")/.."
[ -n "$SKIP_WHL" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devperf/whl/*.whl || exit 1
gunzip -kf .devperf/gemma-3-270m-random/tokenizer.json.gz
cp .devperf/gemma-3-270m-random/tokenizer* .devperf/gemma-3-1b-random/
export PYTHONPATH=$PWD/.devperf/src:/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
B=.devperf/bench
M270=${M270:-.devperf/gemma-3-270m-random}
M1B=${M1B:-.devperf/gemma-3-1b-random}
DEV=${DEV:-cuda}
python3 $B/sample.py --device $DEV --dtype float32 --random-init $M270 --max-wait 0 --reps 2 --skip-growth $SEXTRA --out $OUT/sample_cuda.json
python3 $B/score_prefix.py --device $DEV --dtype float32 --random-init $M270 --skip-lm-eval --max-wait 0 --quick --no-shared-prefix $EXTRA --out $OUT/score_prefix_cuda_per_row_cache.json
python3 $B/sample.py --device $DEV --dtype float32 --random-init $M270 --max-wait 0 --quick --skip-generate --no-shared-prefix $SEXTRA --out $OUT/sample_cuda_per_row_cache.json
python3 $B/sample.py --device $DEV --dtype bfloat16 --random-init $M1B --max-wait 0 --reps 1 --skip-growth $SEXTRA --out $OUT/sample_cuda_1b_bf16.json
echo ALL DONE
