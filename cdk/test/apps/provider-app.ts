// EcrPolicyProvider synthesized with the template's defaults, and with every prop set, for
// tests/cdk/test_provider_matches_template.py, which compares both with template.yaml.
//
//   node cdk/test-out/apps/provider-app.js <outdir>
//
// Stacks: Defaults (no props) and Custom (the values of CUSTOM, written to custom.json so
// the test gives template.yaml's parameters the same ones).
import * as fs from 'fs';
import * as path from 'path';
import {
  App,
  Duration,
  Stack,
  aws_events as events,
  aws_kms as kms,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_sns as sns,
} from 'aws-cdk-lib';
import { DriftAction, EcrPolicyProvider, PublicAccess } from '../../lib';

/** The template parameters the Custom stack sets, by their template.yaml names. */
const CUSTOM = {
  Architecture: 'x86_64',
  IamPropagationTimeoutSeconds: '45',
  PublicAccess: 'Allow',
  DriftAction: 'Restore',
  DriftSweepSchedule: 'rate(6 hours)',
  DriftAlarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:drift',
  LogRetentionInDays: '7',
  LogKmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
};

const [outdir] = process.argv.slice(2);
if (!outdir) {
  console.error('usage: node provider-app.js <outdir>');
  process.exit(2);
}
// Path metadata names each resource's construct id, which is its template.yaml logical id.
const app = new App({ outdir, context: { 'aws:cdk:enable-path-metadata': true } });
new EcrPolicyProvider(new Stack(app, 'Defaults'), 'Provider');
const custom = new Stack(app, 'Custom');
new EcrPolicyProvider(custom, 'Provider', {
  architecture: lambda.Architecture.X86_64,
  iamPropagationTimeout: Duration.seconds(Number(CUSTOM.IamPropagationTimeoutSeconds)),
  publicAccess: PublicAccess.ALLOW,
  driftAction: DriftAction.RESTORE,
  driftSweepSchedule: events.Schedule.rate(Duration.hours(6)),
  driftAlarmTopic: sns.Topic.fromTopicArn(custom, 'Topic', CUSTOM.DriftAlarmTopicArn),
  logRetention: logs.RetentionDays.ONE_WEEK,
  logEncryptionKey: kms.Key.fromKeyArn(custom, 'Key', CUSTOM.LogKmsKeyArn),
});
app.synth();
fs.writeFileSync(path.join(outdir, 'custom.json'), JSON.stringify(CUSTOM, null, 2));
