import * as fs from 'fs';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

/** The project's root (cdk/..). */
export const ROOT = path.resolve(__dirname, '..', '..');

/** A stack in a fixed account and region, as most tests want it. */
export function newStack(env: { account?: string; region?: string } = { account: '123456789012', region: 'us-east-1' }): Stack {
  return new Stack(new App(), 'Test', { env });
}

/** The errors `cdk synth` would report for the stack (construct validations). */
export function synthErrors(stack: Stack): string[] {
  try {
    Template.fromStack(stack);
  } catch (e) {
    return String((e as Error).message)
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.startsWith('['));
  }
  return [];
}

/** The resources of one type in a template, by logical id. */
export function resourcesOf(template: Template, type: string): Record<string, any> {
  return template.findResources(type);
}

/** The Reason a bad event of the provider's corpus (tests/bad-events) expects. */
export function badEventReason(name: string): string {
  const event = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests', 'bad-events', `${name}.json`), 'utf-8'));
  return event.reason;
}

/** The package's function manifest (cdk/assets/manifest.json). */
export function manifest(): Record<string, { file: string; sha256: string; release: boolean }> {
  return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'assets', 'manifest.json'), 'utf-8'));
}
