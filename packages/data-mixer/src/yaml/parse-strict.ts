import { parseDocument } from 'yaml';

/**
 * Parses YAML, treating warnings as errors: an unresolved tag (`!foo bar`) would otherwise become a plain string
 * with only a process warning, where llm-foundry's loader refuses it.
 */
export function parseYamlStrict(text: string): unknown {
  const doc = parseDocument(text, { logLevel: 'silent' });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw problem;
  return doc.toJS();
}
