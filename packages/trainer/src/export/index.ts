export {
  checkpointTokenizer,
  EXPORT_DTYPES,
  type ExportDtype,
  type ExportedCheckpoint,
  type ExportOptions,
  exportHfDirectory,
  exportTrainingCheckpoint,
  resolveTrainingCheckpoint,
} from './export.js';
