// Compile every schema in a directory with Ajv (draft 2020-12, strict mode) and
// validate documents against one of them.
//
//   NODE_PATH=.../node_modules node ajv-check.cjs SCHEMA_DIR SCHEMA_FILE DOCUMENTS_JSON
//
// DOCUMENTS_JSON is a JSON list of documents.  Prints one JSON object:
// {"compiled": [file, ...], "results": [{"valid": bool, "errors": [...]}, ...]}.
// Exits 2 when a schema does not compile (strict mode refuses it).
"use strict";
const { readFileSync, readdirSync } = require("node:fs");
const { join } = require("node:path");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const [schemaDir, schemaFile, documentsFile] = process.argv.slice(2);
const compiled = [];
const validators = {};
for (const name of readdirSync(schemaDir).filter((n) => n.endsWith(".json")).sort()) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  const schema = JSON.parse(readFileSync(join(schemaDir, name), "utf8"));
  try {
    validators[name] = ajv.compile(schema);
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: `${name}: ${err.message}` }) + "\n");
    process.exit(2);
  }
  compiled.push(name);
}
const documents = JSON.parse(readFileSync(documentsFile, "utf8"));
const validate = validators[schemaFile];
const results = documents.map((doc) => {
  const valid = validate(doc);
  return { valid, errors: valid ? [] : validate.errors };
});
process.stdout.write(JSON.stringify({ compiled, results }) + "\n");
