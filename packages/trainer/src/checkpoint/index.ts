export { fsyncDir, removeStaleTemps, writeDirAtomic, writeFileAtomic } from './atomic.js';
export {
  checkpointName,
  loadLatestCheckpoint,
  loadTrainingCheckpoint,
  pruneCheckpoints,
  saveTrainingCheckpoint,
  type TrainingCheckpoint,
  type TrainingState,
} from './checkpoints.js';
