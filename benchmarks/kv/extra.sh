# Sourced by the scripts that run presses beside a committed KV run on its samples (fill.sh,
# default.sh, ruler.sh, zip.sh): seed 0, 1k tokens, ratios 0.25-0.9, one torch thread per process, output in
# benchmarks/kv/MODEL/SETTING/NAME (resumable: rerun to continue).
set -euo pipefail
cd "$(dirname "$0")/../.."
export MALLOC_MMAP_THRESHOLD_=65536 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
six=needle,multikey,multivalue,vartrack,cwe,qa
rcstat data fetch > /dev/null
extra() {  # name, model, tasks, per task, presses, setting
  local out=benchmarks/kv/$2/$6/$1 aware=()
  [ "$6" = query-aware ] && aware=(--query-aware)
  mkdir -p "$out"
  rcstat bench kv --model "$2" --task "$3" --qa-data ../shared/data/quotesum_dev.jsonl --lengths 1024 --seed 0 \
    --compression-ratio 0.25,0.5,0.75,0.9 --per-task "$4" --press "$5" "${aware[@]}" --output "$out" \
    --format table > "$out.log" 2>&1
}
