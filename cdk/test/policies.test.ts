import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { RemovalPolicy, Stack, aws_ecr as ecr, aws_iam as iam } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import {
  EcrPolicyProvider,
  IEcrPolicyProvider,
  RegistryPolicy,
  RegistryPolicyStatement,
  RepositoryPolicy,
  RepositoryPolicyStatement,
} from '../lib';
import { badEventReason, newStack, synthErrors } from './helpers';

const TOKEN = 'arn:aws:lambda:us-east-1:123456789012:function:ecr-policy-provider';
const PULL = ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'];

function provider(stack: Stack): IEcrPolicyProvider {
  const existing = stack.node.tryFindChild('Provider') as IEcrPolicyProvider | undefined;
  return existing ?? EcrPolicyProvider.fromServiceToken(stack, 'Provider', TOKEN);
}

function pull(sid: string | undefined, account = '111122223333'): iam.PolicyStatement {
  return new iam.PolicyStatement({ sid, principals: [new iam.AccountPrincipal(account)], actions: PULL });
}

function replication(sid: string | undefined, account = '111122223333'): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    principals: [new iam.AccountPrincipal(account)],
    actions: ['ecr:CreateRepository', 'ecr:ReplicateImage'],
    resources: ['arn:aws:ecr:us-east-1:123456789012:repository/team-a/*'],
  });
}

function only(template: Template, type: string): any {
  const found = Object.values(template.findResources(type));
  assert.equal(found.length, 1, `${found.length} ${type}`);
  return found[0];
}

const ACCOUNT_111 = { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::111122223333:root']] } };

describe('RegistryPolicy', () => {
  it('is a Custom::ECRRegistryPolicy whose PolicyText is the document', () => {
    const stack = newStack();
    const policy = new RegistryPolicy(stack, 'Policy', {
      provider: provider(stack),
      policyDocument: new iam.PolicyDocument({ statements: [replication('Replication')] }),
    });
    const resource = only(Template.fromStack(stack), 'Custom::ECRRegistryPolicy');
    assert.deepEqual(resource.Properties, {
      ServiceToken: TOKEN,
      PolicyText: {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'Replication',
            Effect: 'Allow',
            Principal: ACCOUNT_111,
            Action: ['ecr:CreateRepository', 'ecr:ReplicateImage'],
            Resource: 'arn:aws:ecr:us-east-1:123456789012:repository/team-a/*',
          },
        ],
      },
    });
    assert.equal(resource.DeletionPolicy, 'Delete');
    const id = Object.keys(Template.fromStack(stack).findResources('Custom::ECRRegistryPolicy'))[0];
    for (const [attribute, value] of Object.entries({
      RegistryId: policy.registryId,
      Region: policy.region,
      Adopted: policy.adopted,
      Access: policy.access,
      PolicyText: policy.policyText,
    })) {
      assert.deepEqual(stack.resolve(value), { 'Fn::GetAtt': [id, attribute] });
    }
    assert.deepEqual(stack.resolve(policy.physicalResourceId), { Ref: id });
  });

  it('passes adopt, allowPublicAccess, region and the removal policy', () => {
    const stack = newStack();
    new RegistryPolicy(stack, 'Policy', {
      provider: provider(stack),
      policyDocument: new iam.PolicyDocument({ statements: [replication('R')] }),
      adopt: true,
      allowPublicAccess: false,
      region: 'eu-west-1',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const resource = only(Template.fromStack(stack), 'Custom::ECRRegistryPolicy');
    assert.equal(resource.Properties.Adopt, true);
    assert.equal(resource.Properties.AllowPublicAccess, false);
    assert.equal(resource.Properties.Region, 'eu-west-1');
    assert.equal(resource.DeletionPolicy, 'Retain');
  });

  it('refuses at synth time what the provider would refuse, in its words', () => {
    const stack = newStack();
    new RegistryPolicy(stack, 'NoResource', {
      provider: provider(stack),
      policyDocument: new iam.PolicyDocument({ statements: [pull('Pull')] }),
    });
    new RegistryPolicy(stack, 'Empty', { provider: provider(stack), policyDocument: new iam.PolicyDocument() });
    const errors = synthErrors(stack).join('\n');
    assert.match(errors, /property PolicyText statement 1 \(Sid "Pull"\) has no Resource; a registry policy statement names the repositories/);
    assert.match(errors, /property PolicyText has no Statement; add a Statement list with at least one statement/);
  });
});

describe('RepositoryPolicy', () => {
  it('is a Custom::ECRRepositoryPolicy on the repository, with force', () => {
    const stack = newStack();
    const policy = new RepositoryPolicy(stack, 'Policy', {
      provider: provider(stack),
      repository: ecr.Repository.fromRepositoryName(stack, 'Repo', 'app'),
      policyDocument: new iam.PolicyDocument({ statements: [pull('Pull')] }),
      adopt: true,
      force: true,
    });
    const resource = only(Template.fromStack(stack), 'Custom::ECRRepositoryPolicy');
    assert.deepEqual(resource.Properties, {
      ServiceToken: TOKEN,
      RepositoryName: 'app',
      Adopt: true,
      Force: true,
      PolicyText: {
        Version: '2012-10-17',
        Statement: [{ Sid: 'Pull', Effect: 'Allow', Principal: ACCOUNT_111, Action: PULL }],
      },
    });
    const id = Object.keys(Template.fromStack(stack).findResources('Custom::ECRRepositoryPolicy'))[0];
    assert.deepEqual(stack.resolve(policy.repositoryArn), { 'Fn::GetAtt': [id, 'RepositoryArn'] });
    assert.deepEqual(stack.resolve(policy.repositoryName), { 'Fn::GetAtt': [id, 'RepositoryName'] });
    assert.deepEqual(stack.resolve(policy.policyText), { 'Fn::GetAtt': [id, 'PolicyText'] });
  });

  it("names the repository's region when it is not the stack's", () => {
    const stack = newStack();
    new RepositoryPolicy(stack, 'Here', {
      provider: provider(stack),
      repository: ecr.Repository.fromRepositoryArn(stack, 'A', 'arn:aws:ecr:us-east-1:123456789012:repository/here'),
      policyDocument: new iam.PolicyDocument({ statements: [pull('Pull')] }),
    });
    new RepositoryPolicy(stack, 'There', {
      provider: provider(stack),
      repository: ecr.Repository.fromRepositoryArn(stack, 'B', 'arn:aws:ecr:eu-west-1:123456789012:repository/there'),
      policyDocument: new iam.PolicyDocument({ statements: [pull('Pull')] }),
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('Custom::ECRRepositoryPolicy', { RepositoryName: 'here', Region: Match.absent() });
    template.hasResourceProperties('Custom::ECRRepositoryPolicy', { RepositoryName: 'there', Region: 'eu-west-1' });
  });

  it('refuses Resource in a repository policy, as the provider does', () => {
    const stack = newStack();
    new RepositoryPolicy(stack, 'Policy', {
      provider: provider(stack),
      repository: ecr.Repository.fromRepositoryName(stack, 'Repo', 'app'),
      policyDocument: new iam.PolicyDocument({
        statements: [new iam.PolicyStatement({ sid: 'AllowPull', principals: [new iam.AccountPrincipal('111122223333')], actions: PULL, resources: ['*'] })],
      }),
    });
    const errors = synthErrors(stack).join('\n');
    assert.ok(errors.includes(badEventReason('70-repository-policy-with-resource')), errors);
    assert.ok(errors.includes('property PolicyText statement 1 (Sid "AllowPull") has Resource "*"'), errors);
  });

  it('warns when an owned repository writes its own whole policy, and depends on the repository', () => {
    const stack = newStack();
    const repository = new ecr.Repository(stack, 'Owned');
    repository.addToResourcePolicy(pull('Own'));
    new RepositoryPolicyStatement(stack, 'Statement', { provider: provider(stack), repository, statement: pull('Extra') });
    const template = Template.fromStack(stack);
    const statement = only(template, 'Custom::ECRRepositoryPolicyStatement');
    const repoId = Object.keys(template.findResources('AWS::ECR::Repository'))[0];
    assert.deepEqual(statement.DependsOn, [repoId]);
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('sets its own RepositoryPolicyText'));
    assert.equal(warnings.length, 1);
  });
});

describe('RegistryPolicyStatement', () => {
  it('is a Custom::ECRRegistryPolicyStatement holding its statements, more with addStatements()', () => {
    const stack = newStack();
    const resource = new RegistryPolicyStatement(stack, 'S', {
      provider: provider(stack),
      statement: replication('TeamA'),
      statements: [replication('TeamB', '444455556666')],
      region: 'eu-west-1',
      adopt: false,
      allowPublicAccess: true,
    });
    resource.addStatements(replication('TeamC', '777788889999'));
    assert.deepEqual(resource.statementSids, ['TeamA', 'TeamB', 'TeamC']);
    const found = only(Template.fromStack(stack), 'Custom::ECRRegistryPolicyStatement');
    assert.deepEqual(found.Properties.Statement.map((s: any) => s.Sid), ['TeamA', 'TeamB', 'TeamC']);
    assert.equal(found.Properties.Region, 'eu-west-1');
    assert.equal(found.Properties.Adopt, false);
    assert.equal(found.Properties.AllowPublicAccess, true);
    assert.equal(found.Properties.RepositoryName, undefined);
    assert.equal(found.Properties.Force, undefined);
    const id = Object.keys(Template.fromStack(stack).findResources('Custom::ECRRegistryPolicyStatement'))[0];
    assert.deepEqual(stack.resolve(resource.sids), { 'Fn::GetAtt': [id, 'Sids'] });
    assert.deepEqual(stack.resolve(resource.access), { 'Fn::GetAtt': [id, 'Access'] });
  });

  it('refuses a statement without Sid, a Sid twice, no statement, no Resource, in the provider words', () => {
    const stack = newStack();
    new RegistryPolicyStatement(stack, 'NoSid', { provider: provider(stack), statement: replication(undefined) });
    new RegistryPolicyStatement(stack, 'Twice', {
      provider: provider(stack),
      statements: [replication('Same'), replication('Same', '444455556666')],
    });
    new RegistryPolicyStatement(stack, 'None', { provider: provider(stack) });
    new RegistryPolicyStatement(stack, 'NoResource', { provider: provider(stack), statement: pull('Pull') });
    const errors = synthErrors(stack).join('\n');
    for (const bad of ['83-statement-resource-without-sid', '84-statement-resource-repeated-sid', '85-statement-resource-empty-list']) {
      assert.ok(errors.includes(badEventReason(bad)), `${bad}: ${errors}`);
    }
    assert.match(errors, /\[Test\/NoResource\] property Statement statement 1 \(Sid "Pull"\) has no Resource/);
  });

  it('refuses a Sid another statement resource of the stack holds on the same registry', () => {
    const stack = newStack();
    new RegistryPolicyStatement(stack, 'First', { provider: provider(stack), statement: replication('Shared') });
    new RegistryPolicyStatement(stack, 'Second', { provider: provider(stack), statement: replication('Shared', '444455556666') });
    // Another region's registry is another policy.
    new RegistryPolicyStatement(stack, 'Elsewhere', { provider: provider(stack), statement: replication('Shared'), region: 'eu-west-1' });
    const errors = synthErrors(stack);
    assert.equal(errors.filter((e) => e.includes('which Test/First/Resource') || e.includes('which Test/First')).length, 1, errors.join('\n'));
    assert.ok(errors.some((e) => e.includes('[Test/Second]') && e.includes('Sid "Shared"')), errors.join('\n'));
  });

  it('accepts a valid one with no error', () => {
    const stack = newStack();
    new RegistryPolicyStatement(stack, 'Ok', { provider: provider(stack), statement: replication('Ok') });
    assert.deepEqual(synthErrors(stack), []);
  });
});

describe('RepositoryPolicyStatement', () => {
  it('is a Custom::ECRRepositoryPolicyStatement on the repository', () => {
    const stack = newStack();
    const resource = new RepositoryPolicyStatement(stack, 'S', {
      provider: provider(stack),
      repository: ecr.Repository.fromRepositoryAttributes(stack, 'Repo', {
        repositoryName: 'team/app',
        repositoryArn: 'arn:aws:ecr:us-east-1:123456789012:repository/team/app',
      }),
      statement: pull('Pull'),
      force: false,
      adopt: true,
    });
    const found = only(Template.fromStack(stack), 'Custom::ECRRepositoryPolicyStatement');
    assert.deepEqual(found.Properties, {
      ServiceToken: TOKEN,
      RepositoryName: 'team/app',
      Force: false,
      Adopt: true,
      Statement: [{ Sid: 'Pull', Effect: 'Allow', Principal: ACCOUNT_111, Action: PULL }],
    });
    const id = Object.keys(Template.fromStack(stack).findResources('Custom::ECRRepositoryPolicyStatement'))[0];
    assert.deepEqual(stack.resolve(resource.repositoryArn), { 'Fn::GetAtt': [id, 'RepositoryArn'] });
    assert.deepEqual(stack.resolve(resource.sids), { 'Fn::GetAtt': [id, 'Sids'] });
  });

  it('refuses a Sid held by another resource on the same repository, not on another', () => {
    const stack = newStack();
    const app = ecr.Repository.fromRepositoryName(stack, 'App', 'app');
    const other = ecr.Repository.fromRepositoryName(stack, 'Other', 'other');
    new RepositoryPolicyStatement(stack, 'A', { provider: provider(stack), repository: app, statement: pull('Pull') });
    new RepositoryPolicyStatement(stack, 'B', { provider: provider(stack), repository: app, statement: pull('Pull', '444455556666') });
    new RepositoryPolicyStatement(stack, 'C', { provider: provider(stack), repository: other, statement: pull('Pull') });
    const errors = synthErrors(stack);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0], /\[Test\/B\] property Statement names Sid "Pull", which Test\/A also holds/);
  });

  it('takes a prefix instead of a repository: every repository under it, and its creation templates', () => {
    const stack = newStack();
    const resource = new RepositoryPolicyStatement(stack, 'Team', {
      provider: provider(stack),
      repositoryPrefix: 'team/',
      statement: pull('TeamPull'),
    });
    const found = only(Template.fromStack(stack), 'Custom::ECRRepositoryPolicyStatement');
    assert.deepEqual(found.Properties, {
      ServiceToken: TOKEN,
      RepositoryPrefix: 'team/',
      Statement: [{ Sid: 'TeamPull', Effect: 'Allow', Principal: ACCOUNT_111, Action: PULL }],
    });
    const id = Object.keys(Template.fromStack(stack).findResources('Custom::ECRRepositoryPolicyStatement'))[0];
    assert.deepEqual(stack.resolve(resource.repositories), { 'Fn::GetAtt': [id, 'Repositories'] });
    assert.deepEqual(stack.resolve(resource.templates), { 'Fn::GetAtt': [id, 'Templates'] });
  });

  it('refuses a repository and a prefix together, neither, or a prefix ECR does not take, in the provider words', () => {
    const stack = newStack();
    const app = ecr.Repository.fromRepositoryName(stack, 'App', 'app');
    new RepositoryPolicyStatement(stack, 'Both', { provider: provider(stack), repository: app, repositoryPrefix: 'team', statement: pull('A') });
    new RepositoryPolicyStatement(stack, 'Neither', { provider: provider(stack), statement: pull('B') });
    new RepositoryPolicyStatement(stack, 'Upper', { provider: provider(stack), repositoryPrefix: 'Team/', statement: pull('C') });
    for (const ok of ['team', 'ROOT', 'a.b_c__d-e---f/g/']) {
      new RepositoryPolicyStatement(stack, `Ok-${ok}`, { provider: provider(stack), repositoryPrefix: ok, statement: pull(`D${ok.length}`) });
    }
    const errors = synthErrors(stack);
    assert.equal(errors.length, 3, errors.join('\n'));
    const at = (path: string) => errors.find((e) => e.startsWith(`[Test/${path}]`)) ?? '';
    for (const [path, bad] of [
      ['Both', '101-prefix-and-repository-name'],
      ['Upper', '102-prefix-uppercase'],
      ['Neither', '104-statement-without-name-or-prefix'],
    ]) {
      assert.ok(at(path).toLowerCase().includes(badEventReason(bad).toLowerCase()), `${path}: ${at(path)}`);
    }
  });

  it('refuses a Sid another resource holds on the same prefix, team and team/ alike', () => {
    const stack = newStack();
    new RepositoryPolicyStatement(stack, 'A', { provider: provider(stack), repositoryPrefix: 'team', statement: pull('Pull') });
    new RepositoryPolicyStatement(stack, 'B', { provider: provider(stack), repositoryPrefix: 'team/', statement: pull('Pull') });
    new RepositoryPolicyStatement(stack, 'C', { provider: provider(stack), repositoryPrefix: 'other', statement: pull('Pull') });
    const errors = synthErrors(stack);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0], /\[Test\/B\] property Statement names Sid "Pull", which Test\/A also holds/);
  });

  it('refuses Resource and a missing Principal', () => {
    const stack = newStack();
    const app = ecr.Repository.fromRepositoryName(stack, 'App', 'app');
    new RepositoryPolicyStatement(stack, 'A', {
      provider: provider(stack),
      repository: app,
      statement: new iam.PolicyStatement({ sid: 'NoWho', actions: PULL, resources: ['*'] }),
    });
    const errors = synthErrors(stack).join('\n');
    assert.match(errors, /property Statement statement 1 \(Sid "NoWho"\) has no Principal; ECR policies are resource policies/);
    assert.match(errors, /property Statement statement 1 \(Sid "NoWho"\) has Resource "\*", but a repository policy applies to its own repository/);
  });
});
