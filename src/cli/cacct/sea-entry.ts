// Entry point of the single-executable build of cacct (see build-sea.ts): CommonJS, no top-level await.

import { main } from './main.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
