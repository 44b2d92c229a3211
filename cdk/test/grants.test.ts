import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { App, PhysicalName, Stack, aws_ecr as ecr, aws_iam as iam } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { EcrPolicyProvider, MAX_DERIVED_SID_CHARS, RepositoryPolicyGrants, RepositoryPolicyStatement } from '../lib';
import { newStack } from './helpers';

const TOKEN = 'arn:aws:lambda:us-east-1:123456789012:function:ecr-policy-provider';
const PULL = ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'];
const PUSH = ['ecr:CompleteLayerUpload', 'ecr:UploadLayerPart', 'ecr:InitiateLayerUpload', 'ecr:BatchCheckLayerAvailability', 'ecr:PutImage'];

function statements(stack: Stack): any[] {
  return Object.values(Template.fromStack(stack).findResources('Custom::ECRRepositoryPolicyStatement'));
}

function setup() {
  const stack = newStack();
  const repository = ecr.Repository.fromRepositoryName(stack, 'Repo', 'app');
  const provider = EcrPolicyProvider.fromServiceToken(stack, 'Provider', TOKEN);
  return { stack, repository, provider, grants: RepositoryPolicyGrants.fromRepository(repository, provider) };
}

describe('RepositoryPolicyGrants on an imported repository', () => {
  it("writes another account's pull grant as a statement resource, with a derived Sid", () => {
    const { stack, grants } = setup();
    const grant = grants.pull(new iam.AccountPrincipal('111122223333'));
    assert.ok(grant.success);
    const [resource] = statements(stack);
    assert.equal(statements(stack).length, 1);
    assert.equal(resource.Properties.ServiceToken, TOKEN);
    assert.equal(resource.Properties.RepositoryName, 'app');
    const [statement] = resource.Properties.Statement;
    assert.deepEqual([...statement.Action].sort(), [...PULL].sort());
    assert.equal(statement.Resource, undefined);
    assert.match(statement.Sid, /^Pull111122223333[0-9a-f]{16}$/);
    assert.ok(statement.Sid.length <= MAX_DERIVED_SID_CHARS);
  });

  it('makes the same grant twice one resource, and a second grantee a resource of its own', () => {
    const { stack, repository, provider, grants } = setup();
    grants.pull(new iam.AccountPrincipal('111122223333'));
    grants.pull(new iam.AccountPrincipal('111122223333'));
    RepositoryPolicyGrants.fromRepository(repository, provider).actions(new iam.AccountPrincipal('111122223333'), ...[...PULL].reverse());
    assert.equal(repository.node.children.filter((c) => c instanceof RepositoryPolicyStatement).length, 1);
    grants.pull(new iam.AccountPrincipal('444455556666'));
    grants.push(new iam.AccountPrincipal('111122223333'));
    const sids = statements(stack).map((r) => r.Properties.Statement[0].Sid).sort();
    assert.equal(sids.length, 3);
    assert.equal(new Set(sids).size, 3);
    assert.ok(sids.some((s) => s.startsWith('Pull444455556666')));
    assert.ok(sids.some((s) => s.startsWith('Push111122223333')));
  });

  it('derives the same Sid in another synthesis (a redeploy changes nothing)', () => {
    const sid = () => {
      const { stack, grants } = setup();
      grants.pullPush(new iam.ArnPrincipal('arn:aws:iam::111122223333:role/ci'));
      return statements(stack)[0].Properties.Statement[0].Sid;
    };
    assert.equal(sid(), sid());
    assert.match(sid(), /^PullPush111122223333[0-9a-f]{16}$/);
  });

  it("grants a role of another account's stack on the resource, with actions() named Grant", () => {
    const app = new App();
    const other = new Stack(app, 'Other', { env: { account: '999988887777', region: 'us-east-1' } });
    const role = new iam.Role(other, 'Builder', { roleName: PhysicalName.GENERATE_IF_NEEDED, assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com') });
    const stack = new Stack(app, 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
    const repository = ecr.Repository.fromRepositoryName(stack, 'Repo', 'app');
    const provider = EcrPolicyProvider.fromServiceToken(stack, 'Provider', TOKEN);
    RepositoryPolicyGrants.fromRepository(repository, provider).actions(role, 'ecr:DescribeImages');
    const [resource] = statements(stack);
    const [statement] = resource.Properties.Statement;
    assert.equal(statement.Action, 'ecr:DescribeImages');
    assert.match(statement.Sid, /^Grant999988887777[0-9a-f]{16}$/);
    // The role's own stack gets the identity half.
    const policies = Object.values(Template.fromStack(other).findResources('AWS::IAM::Policy'));
    assert.equal(policies.length, 1);
    assert.equal(policies[0].Properties.PolicyDocument.Statement[0].Action, 'ecr:DescribeImages');
  });

  it('gives a principal of the same account an identity policy, as CDK does, and no statement', () => {
    const { stack, grants } = setup();
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    const grant = grants.pull(role);
    assert.ok(grant.success);
    assert.equal(statements(stack).length, 0);
    const [policy] = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'));
    const actions = policy.Properties.PolicyDocument.Statement.flatMap((s: any) => [].concat(s.Action));
    assert.deepEqual(actions.sort(), [...PULL, 'ecr:GetAuthorizationToken'].sort());
  });

  it('uses the stack default provider when none is named', () => {
    const stack = newStack();
    const repository = ecr.Repository.fromRepositoryName(stack, 'Repo', 'app');
    RepositoryPolicyGrants.fromRepository(repository).pull(new iam.AccountPrincipal('111122223333'));
    assert.deepEqual(statements(stack)[0].Properties.ServiceToken, { 'Fn::ImportValue': 'ecr-policy-provider-ServiceToken' });
  });

  it("writes a repository of another region with that region", () => {
    const stack = newStack();
    const repository = ecr.Repository.fromRepositoryArn(stack, 'Repo', 'arn:aws:ecr:eu-west-1:123456789012:repository/far');
    RepositoryPolicyGrants.fromRepository(repository).pull(new iam.AccountPrincipal('111122223333'));
    const [resource] = statements(stack);
    assert.equal(resource.Properties.Region, 'eu-west-1');
    assert.equal(resource.Properties.RepositoryName, 'far');
  });
});

describe('provider shortcuts and addToResourcePolicy', () => {
  it('grantPull and grantPullPush go through the provider they are called on', () => {
    const { stack, repository, provider } = setup();
    provider.grantPull(repository, new iam.AccountPrincipal('111122223333'));
    provider.grantPullPush(repository, new iam.AccountPrincipal('444455556666'));
    const found = statements(stack);
    assert.equal(found.length, 2);
    const actions = found.map((r) => [].concat(r.Properties.Statement[0].Action).sort());
    assert.deepEqual(actions.map((a) => a.length).sort(), [3, 7]);
    assert.deepEqual([...new Set([...PULL, ...PUSH])].sort(), actions.find((a) => a.length === 7));
  });

  it('keeps a given Sid, derives a missing one, and refuses a Sid given twice with other content', () => {
    const { stack, repository, provider } = setup();
    const statement = (sid?: string, account = '111122223333') =>
      new iam.PolicyStatement({ sid, principals: [new iam.AccountPrincipal(account)], actions: ['ecr:BatchGetImage'] });
    const result = provider.addToResourcePolicy(repository, statement('Console'));
    assert.ok(result.statementAdded);
    provider.addToResourcePolicy(repository, statement('Console'));
    provider.addToResourcePolicy(repository, statement(undefined));
    const sids = statements(stack).map((r) => r.Properties.Statement[0].Sid);
    assert.equal(sids.length, 2);
    assert.ok(sids.includes('Console'));
    assert.ok(sids.some((s) => /^Grant111122223333[0-9a-f]{16}$/.test(s)), sids.join());
    assert.throws(() => provider.addToResourcePolicy(repository, statement('Console', '444455556666')), /Sid "Console" is given twice/);
  });
});
