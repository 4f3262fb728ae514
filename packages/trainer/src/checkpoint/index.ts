export { fsyncDir, removeStaleTemps, tempDirFor, writeDirAtomic, writeFileAtomic } from './atomic.js';
export {
  type CheckpointRanks,
  checkpointName,
  type LoadedTrainingCheckpoint,
  loadLatestCheckpoint,
  loadTrainingCheckpoint,
  pruneCheckpoints,
  saveTrainingCheckpoint,
  type TrainingCheckpoint,
  type TrainingState,
} from './checkpoints.js';
