/**
 * `havre`: the command line's entry. The memory setting of this process comes first
 * (young-generation.ts), then the commands (program.ts) are loaded: loading them is already when
 * V8 would grow its young generation, so they are imported only once the setting is in place.
 */
import './young-generation.ts';

await import('./program.ts');
