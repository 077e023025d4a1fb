package main

// rulesYAML is a routing table file for the contract test of
// ROUTING_RULES_FILE (the parser's own tests are in shared/appeal).
const rulesYAML = `
defaultDepartment: triage-desk
rules:
  - category: land
    department: natural-resources
    counties:
      anji: anji-natural-resources
  - category: tax
    department: tax
`
