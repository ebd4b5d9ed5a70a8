#!/bin/bash
# MindFormers' single-machine launch form, run by mf (CPU ranks; on Ascend, NPUs):
#
#   bash scripts/run_distribute_single_node.sh "CMD" RANK_TABLE [START,END] RANK_SIZE
#
# Device i of [START,END) runs CMD as RANK_ID i-START with DEVICE_ID i, RANK_SIZE and
# RANK_TABLE_FILE exported as MindFormers' script does, plus the variables of MindSpore's
# cluster (a scheduler is started too). Logs: ./output/log/rank_<RANK_ID>/mindformer.log.
# Unlike the original, this waits for the ranks, ends them all when one fails and names it.
# The scheduler's port: a free one, or $MF_MASTER_PORT.
if [ $# != 4 ]; then
  echo "Usage Help: bash run_distribute_single_node.sh [EXECUTE_ORDER] [RANK_TABLE_PATH] [DEVICE_RANGE] [RANK_SIZE]" >&2
  exit 2
fi
if command -v mf >/dev/null 2>&1; then MF=(mf); else MF=(uv run --project "$(dirname "$0")/.." mf); fi
exec "${MF[@]}" distribute single "$1" "$2" "$3" "$4" ${MF_MASTER_PORT:+--master-port "$MF_MASTER_PORT"}
