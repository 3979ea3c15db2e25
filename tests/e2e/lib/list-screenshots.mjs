// Prints where the browser tests left their screenshots and perf figures.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { screenshotDir } from './browser.mjs';

const dir = screenshotDir();
const files = readdirSync(dir).filter((f) => /\.(png|json)$/.test(f)).sort();
console.log(`\nscreenshots and perf figures in ${dir}:`);
for (const f of files) console.log(`  ${join(dir, f)}`);
