// A node:test reporter that ends the run with one line CI can read:
// "N passed, N failed". Suites and the per-file wrappers Node 20 reports
// are not tests of their own, so only leaf tests are counted; but a file
// that fails with no failing test in it (it crashed, or would not load)
// counts as one failure.
export default async function* summaryReporter(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const filesWithFailures = new Set();
  const failedFiles = [];

  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') {
      continue;
    }

    const { details, name, file } = event.data;
    if (/\.(js|mjs|cjs)$/.test(name)) {
      if (event.type === 'test:fail') {
        failedFiles.push(name);
      }

      continue;
    }

    if (details?.type === 'suite') {
      continue;
    }

    if (event.type === 'test:fail') {
      filesWithFailures.add(file);
    }

    if (event.data.skip || event.data.todo) {
      skipped += 1;
    } else if (event.type === 'test:pass') {
      passed += 1;
    } else {
      failed += 1;
    }
  }

  failed += failedFiles.filter((name) => !filesWithFailures.has(name)).length;
  const skips = skipped ? `, ${skipped} skipped` : '';
  yield `\n${passed} passed, ${failed} failed${skips}\n`;
}
