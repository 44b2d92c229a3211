import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  App,
  Duration,
  Stack,
  aws_ecr as ecr,
  aws_events as events,
  aws_iam as iam,
  aws_kms as kms,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_sns as sns,
} from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import {
  DEFAULT_EXPORT_NAME,
  DriftAction,
  EcrPolicyProvider,
  PublicAccess,
  RegistryPolicyStatement,
  RepositoryPolicyStatement,
} from '../lib';
import { manifest, newStack } from './helpers';

const TOKEN = 'arn:aws:lambda:us-east-1:123456789012:function:ecr-policy-provider';

function pull(sid: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    principals: [new iam.AccountPrincipal('111122223333')],
    actions: ['ecr:BatchGetImage'],
  });
}

function replication(stack: Stack, sid: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    principals: [new iam.AccountPrincipal('111122223333')],
    actions: ['ecr:ReplicateImage'],
    resources: [`arn:aws:ecr:us-east-1:${stack.account}:repository/*`],
  });
}

function environment(template: Template): Record<string, unknown> {
  const [fn] = Object.values(template.findResources('AWS::Lambda::Function'));
  return fn.Properties.Environment.Variables;
}

describe('EcrPolicyProvider.fromServiceToken and fromExportName', () => {
  it('uses the given ARN as the ServiceToken', () => {
    const stack = newStack();
    const provider = EcrPolicyProvider.fromServiceToken(stack, 'Provider', TOKEN);
    new RegistryPolicyStatement(stack, 'S', { provider, statement: replication(stack, 'A') });
    Template.fromStack(stack).hasResourceProperties('Custom::ECRRegistryPolicyStatement', { ServiceToken: TOKEN });
  });

  it('imports the sam deploy stack export by default, and any other by name', () => {
    assert.equal(DEFAULT_EXPORT_NAME, 'ecr-policy-provider-ServiceToken');
    const stack = newStack();
    const byDefault = EcrPolicyProvider.fromExportName(stack, 'Default');
    const named = EcrPolicyProvider.fromExportName(stack, 'Named', 'platform-ecr-ServiceToken');
    new RegistryPolicyStatement(stack, 'A', { provider: byDefault, statement: replication(stack, 'A') });
    new RegistryPolicyStatement(stack, 'B', { provider: named, statement: replication(stack, 'B') });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('Custom::ECRRegistryPolicyStatement', {
      Statement: [Match.objectLike({ Sid: 'A' })],
      ServiceToken: { 'Fn::ImportValue': 'ecr-policy-provider-ServiceToken' },
    });
    template.hasResourceProperties('Custom::ECRRegistryPolicyStatement', {
      Statement: [Match.objectLike({ Sid: 'B' })],
      ServiceToken: { 'Fn::ImportValue': 'platform-ecr-ServiceToken' },
    });
  });

  it('gives a resource without a provider the stack default, one per stack', () => {
    const stack = newStack();
    const a = new RegistryPolicyStatement(stack, 'A', { statement: replication(stack, 'A') });
    const b = new RegistryPolicyStatement(stack, 'B', { statement: replication(stack, 'B') });
    assert.equal(a.provider, b.provider);
    assert.equal(a.provider, EcrPolicyProvider.defaultFor(stack));
    const resources = Template.fromStack(stack).findResources('Custom::ECRRegistryPolicyStatement');
    for (const resource of Object.values(resources)) {
      assert.deepEqual(resource.Properties.ServiceToken, { 'Fn::ImportValue': DEFAULT_EXPORT_NAME });
    }
    assert.equal(Object.keys(resources).length, 2);
  });
});

describe('new EcrPolicyProvider', () => {
  it('deploys what template.yaml deploys, with its defaults', () => {
    const stack = newStack();
    new EcrPolicyProvider(stack, 'Provider');
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::Function', 1);
    template.resourceCountIs('AWS::IAM::Role', 1);
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.resourceCountIs('AWS::Events::Rule', 2);
    template.resourceCountIs('AWS::Lambda::Permission', 2);
    template.resourceCountIs('AWS::SQS::Queue', 1);
    template.resourceCountIs('AWS::Logs::LogGroup', 1);
    template.resourceCountIs('AWS::CloudWatch::Alarm', 1);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      Handler: 'bootstrap',
      Architectures: ['arm64'],
      MemorySize: 128,
      Timeout: 180,
    });
    const env = environment(template);
    assert.equal(env.IAM_PROPAGATION_TIMEOUT_SECONDS, '120');
    assert.equal(env.PUBLIC_ACCESS, 'Block');
    assert.equal(env.DRIFT_ACTION, 'Report');
    assert.deepEqual(env.POLICY_LOCK_TABLE, { Ref: Object.keys(template.findResources('AWS::DynamoDB::Table'))[0] });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30, KmsKeyId: Match.absent() });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 day)' });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmActions: Match.absent() });
    template.resourceCountIs('AWS::CloudFormation::Output', 0);
    assert.deepEqual(template.findOutputs('*'), {});
  });

  it('takes each of the template parameters as a prop', () => {
    const stack = newStack();
    new EcrPolicyProvider(stack, 'Provider', {
      architecture: lambda.Architecture.X86_64,
      iamPropagationTimeout: Duration.seconds(60),
      publicAccess: PublicAccess.ALLOW,
      driftAction: DriftAction.RESTORE,
      driftSweepSchedule: events.Schedule.rate(Duration.hours(6)),
      driftAlarmTopic: sns.Topic.fromTopicArn(stack, 'Topic', 'arn:aws:sns:us-east-1:123456789012:drift'),
      logRetention: logs.RetentionDays.ONE_WEEK,
      logEncryptionKey: kms.Key.fromKeyArn(stack, 'Key', 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'),
      exportName: 'platform-ecr-ServiceToken',
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', { Architectures: ['x86_64'] });
    const env = environment(template);
    assert.equal(env.IAM_PROPAGATION_TIMEOUT_SECONDS, '60');
    assert.equal(env.PUBLIC_ACCESS, 'Allow');
    assert.equal(env.DRIFT_ACTION, 'Restore');
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(6 hours)' });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmActions: ['arn:aws:sns:us-east-1:123456789012:drift'] });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      RetentionInDays: 7,
      KmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    });
    const outputs = Object.values(template.findOutputs('*'));
    assert.equal(outputs.length, 1);
    assert.deepEqual(outputs[0].Export, { Name: 'platform-ecr-ServiceToken' });
  });

  it('refuses an IAM propagation timeout the function cannot serve', () => {
    assert.throws(
      () => new EcrPolicyProvider(newStack(), 'Provider', { iamPropagationTimeout: Duration.seconds(151) }),
      /iamPropagationTimeout is 151 seconds; it must be between 0 and 150/,
    );
    new EcrPolicyProvider(newStack(), 'Provider', { iamPropagationTimeout: Duration.seconds(150) });
  });

  it('takes the function from the zip the package ships, and says when it is a test stand-in', () => {
    const app = new App({ context: { 'aws:cdk:enable-asset-metadata': true } });
    const stack = new Stack(app, 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
    const provider = new EcrPolicyProvider(stack, 'Provider');
    const template = Template.fromStack(stack);
    const [fn] = Object.values(template.findResources('AWS::Lambda::Function'));
    assert.match(JSON.stringify(fn.Properties.Code.S3Key), /\.zip/);
    assert.equal(fn.Metadata['aws:asset:property'], 'Code');
    const release = manifest().arm64.release;
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('test stand-in'));
    assert.equal(warnings.length, release ? 0 : 1);
    assert.equal(provider.serviceToken, provider.providerFunction.attrArn);
  });

  it('is the ServiceToken of the resources that name it, and grants through it', () => {
    const stack = newStack();
    const provider = new EcrPolicyProvider(stack, 'Provider');
    const repository = ecr.Repository.fromRepositoryName(stack, 'Repo', 'app');
    new RepositoryPolicyStatement(stack, 'S', { provider, repository, statement: pull('A') });
    provider.grantPull(repository, new iam.AccountPrincipal('444455556666'));
    const template = Template.fromStack(stack);
    const fnId = Object.keys(template.findResources('AWS::Lambda::Function'))[0];
    const statements = Object.values(template.findResources('Custom::ECRRepositoryPolicyStatement'));
    assert.equal(statements.length, 2);
    for (const s of statements) {
      assert.deepEqual(s.Properties.ServiceToken, { 'Fn::GetAtt': [fnId, 'Arn'] });
    }
  });
});
