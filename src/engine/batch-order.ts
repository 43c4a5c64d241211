// How a shared context composes each llama_decode batch from the rows its sequences queued
// (node-llama-cpp's custom batching prioritization). Two rules keep every request's numbers what
// a lone run gives:
//
// - A prompt piece (more than one token) is evaluated alone, whole: llama.cpp then runs it as the
//   same single ubatch a lone run has. Mixed with other sequences' rows it would be split
//   (llama.cpp takes an equal number of tokens per sequence into a ubatch), and its attention
//   would run on other shapes. Pieces and decode steps alternate when both wait.
// - Decode rows (one token per sequence) are ordered by the sequence's priority (its sequence id
//   + 1). llama.cpp puts rows of sequences with consecutive increasing ids into one ubatch, and
//   one ubatch is one matrix product per weight:
//     "invariant": rows in decreasing id order, so every ubatch holds one sequence. Each row is
//       computed by the same kernel as in a lone run (ggml's vec_dot; with 2+ rows, ggml uses
//       llamafile's tinyBLAS, whose sums round differently), so output is bit-identical whatever
//       runs beside it. Weights are read once per sequence and step.
//     "shared": rows in increasing id order, so consecutive sequences share one ubatch and the
//       weights are read once per step for all of them; a row's logits may differ from a lone
//       run's in the last bits.

import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from "node-llama-cpp";

export type BatchMode = "invariant" | "shared";

export function batchOrder(mode: BatchMode): CustomBatchingPrioritizationStrategy {
  let lastWasPiece = false;
  return ({ items, size }): PrioritizedBatchItem[] => {
    const pieces: BatchItem[] = [];
    const steps: BatchItem[] = [];
    for (const item of items) (item.tokens.length > 1 ? pieces : steps).push(item);
    const piece = pieces[0];
    if (piece && (steps.length === 0 || !lastWasPiece)) {
      lastWasPiece = true;
      // The context's batch size is at least a prompt piece (PROMPT_PIECE_TOKENS): one call, one ubatch.
      return [{ item: piece, processAmount: Math.min(piece.tokens.length, size) }];
    }
    lastWasPiece = false;
    const dir = mode === "shared" ? 1 : -1;
    steps.sort((a, b) => dir * (a.evaluationPriority - b.evaluationPriority));
    return steps.slice(0, size).map((item) => ({ item, processAmount: 1 }));
  };
}
