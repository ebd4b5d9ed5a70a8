#!/bin/bash
# MindFormers' multi-machine launch form, run by mf; run it on every server of the rank table:
#
#   bash scripts/run_distribute_multi_node.sh "CMD" RANK_TABLE [START,END] RANK_SIZE
#
# [START,END) are this server's rank ids in the table (e.g. [8,16] on the second of two
# 8-device servers); rank i runs CMD with RANK_ID i and DEVICE_ID i-START. The table's first
# server leads: its IP is the scheduler's address, on port 8118 or $MF_MASTER_PORT (and the
# launchers' own channel on the next port). A rank dying on any server ends every server's.
if [ $# != 4 ]; then
  echo "Usage Help: bash run_distribute_multi_node.sh [EXECUTE_ORDER] [RANK_TABLE_FILE] [DEVICE_RANGE] [RANK_SIZE]" >&2
  exit 2
fi
if command -v mf >/dev/null 2>&1; then MF=(mf); else MF=(uv run --project "$(dirname "$0")/.." mf); fi
exec "${MF[@]}" distribute multi "$1" "$2" "$3" "$4" ${MF_MASTER_PORT:+--master-port "$MF_MASTER_PORT"}
