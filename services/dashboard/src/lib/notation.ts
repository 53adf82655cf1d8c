import { parseDocument } from "yaml";

/** A template written as JSON or YAML (JSON is YAML too); a syntax error names its line. */
export function parseTemplate(text: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const [first] = doc.errors;
  if (first) {
    const at = first.linePos?.[0];
    const where = at ? `line ${at.line}, column ${at.col}` : "the text";
    throw new Error(`Not valid JSON or YAML at ${where}: ${first.message.split("\n")[0]}`);
  }
  return doc.toJS();
}
