// Translations from Cloud Controller's shapes to Diego's that the Stager and Nsync share: CC's
// values pass to Diego unchanged (spec §2.2), only the message types differ.
import type { SecurityGroupRule as CcSecurityGroupRule } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { SecurityGroupRule } from '../../gen/diego/bbs/v1/security_group.js';

/** CC's egress rule as the BBS's: the same fields, passed through unchanged. */
export function egressRuleFor(rule: CcSecurityGroupRule): SecurityGroupRule {
  return SecurityGroupRule.fromPartial({
    protocol: rule.protocol,
    destinations: [...rule.destinations],
    ports: [...rule.ports],
    portRange: rule.portRange ? { start: rule.portRange.start, end: rule.portRange.end } : undefined,
    icmpInfo: rule.icmpInfo ? { type: rule.icmpInfo.type, code: rule.icmpInfo.code } : undefined,
    log: rule.log,
  });
}
