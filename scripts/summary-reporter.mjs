// A node:test reporter that ends the run with one line CI can read:
// "N passed, N failed". Suites and the per-file wrappers Node 20 reports
// are not tests of their own, so only leaf tests are counted.
export default async function* summaryReporter(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;

  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') {
      continue;
    }

    const { details, name } = event.data;
    if (details?.type === 'suite' || /\.(js|mjs|cjs)$/.test(name)) {
      continue;
    }

    if (event.data.skip || event.data.todo) {
      skipped += 1;
    } else if (event.type === 'test:pass') {
      passed += 1;
    } else {
      failed += 1;
    }
  }

  const skips = skipped ? `, ${skipped} skipped` : '';
  yield `\n${passed} passed, ${failed} failed${skips}\n`;
}
