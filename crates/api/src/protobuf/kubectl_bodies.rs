//! Request bodies captured from kubectl 1.32 (`/usr/lib/google-cloud-sdk/bin/kubectl.1.32`) against a
//! plain-HTTP recording server, each with the JSON that `kubectl <same command> --dry-run=client -o
//! json` prints for the same object (Go's encoding of it), or `None` where kubectl cannot print
//! one (the test states it by hand).

/// `(name, kubectl arguments, body, Go's JSON of the object)`.
pub(super) const BODIES: &[(&str, &str, &[u8], Option<&str>)] = &[
    (
        "autoscale",
        "autoscale deployment web --min=2 --max=5 --cpu-percent=80",
        b"k8s\x00\x0a)\x0a\x0eautoscaling/v1\x12\x17HorizontalPodAutoscaler\x12?\x0a\x13\x0a\x03web\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\"\x0a\x1a\x0a\x0aDeployment\x12\x03web\x1a\x07apps/v1\x10\x02\x18\x05 P\x1a\x04\x18\x00 \x00\x1a\x00\"\x00",
        Some(r#"{"kind":"HorizontalPodAutoscaler","apiVersion":"autoscaling/v1","metadata":{"name":"web","creationTimestamp":null},"spec":{"scaleTargetRef":{"kind":"Deployment","name":"web","apiVersion":"apps/v1"},"minReplicas":2,"maxReplicas":5,"targetCPUUtilizationPercentage":80},"status":{"currentReplicas":0,"desiredReplicas":0}}"#),
    ),
    (
        "cani",
        "auth can-i get pods",
        b"k8s\x00\x0a2\x0a\x17authorization.k8s.io/v1\x12\x17SelfSubjectAccessReview\x12<\x0a\x10\x0a\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x1e\x0a\x1c\x0a\x07default\x12\x03get\x1a\x00\"\x00*\x04pods2\x00:\x00\x1a\x08\x08\x00\x12\x00\x1a\x00 \x00\x1a\x00\"\x00",
        None,
    ),
    (
        "clusterrole",
        "create clusterrole cr1 --verb=get --non-resource-url=/healthz",
        b"k8s\x00\x0a+\x0a\x1crbac.authorization.k8s.io/v1\x12\x0bClusterRole\x12&\x0a\x13\x0a\x03cr1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x0f\x0a\x03get*\x08/healthz\x1a\x00\"\x00",
        Some(r#"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"cr1","creationTimestamp":null},"rules":[{"verbs":["get"],"nonResourceURLs":["/healthz"]}]}"#),
    ),
    (
        "clusterrole_agg",
        "create clusterrole cr2 --aggregation-rule=a=b",
        b"k8s\x00\x0a+\x0a\x1crbac.authorization.k8s.io/v1\x12\x0bClusterRole\x12!\x0a\x13\x0a\x03cr2\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x1a\x0a\x0a\x08\x0a\x06\x0a\x01a\x12\x01b\x1a\x00\"\x00",
        Some(r#"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"cr2","creationTimestamp":null},"rules":null,"aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"a":"b"}}]}}"#),
    ),
    (
        "clusterrolebinding",
        "create clusterrolebinding crb1 --clusterrole=cr1 --user=bob",
        b"k8s\x00\x0a2\x0a\x1crbac.authorization.k8s.io/v1\x12\x12ClusterRoleBinding\x12o\x0a\x14\x0a\x04crb1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12(\x0a\x04User\x12\x19rbac.authorization.k8s.io\x1a\x03bob\"\x00\x1a-\x0a\x19rbac.authorization.k8s.io\x12\x0bClusterRole\x1a\x03cr1\x1a\x00\"\x00",
        Some(r#"{"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"crb1","creationTimestamp":null},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"bob"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cr1"}}"#),
    ),
    (
        "configmap",
        "create configmap cm1 --from-literal=a=1 --from-literal=b=two --from-file=blob=/tmp/pbx/cap/blob.bin",
        b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x127\x0a\x13\x0a\x03cm1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x06\x0a\x01a\x12\x011\x12\x08\x0a\x01b\x12\x03two\x1a\x0e\x0a\x04blob\x12\x06bin\x00\x01\xff\x1a\x00\"\x00",
        Some(r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm1","creationTimestamp":null},"data":{"a":"1","b":"two"},"binaryData":{"blob":"YmluAAH/"}}"#),
    ),
    (
        "cronjob",
        "create cronjob cj1 --image=busybox --schedule=@hourly --restart=OnFailure -- date",
        b"k8s\x00\x0a\x13\x0a\x08batch/v1\x12\x07CronJob\x12\xa3\x01\x0a\x13\x0a\x03cj1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x89\x01\x0a\x07@hourly\x1a\x00*|\x0a\x13\x0a\x03cj1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12e2c\x0a\x10\x0a\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12O\x12(\x0a\x03cj1\x12\x07busybox\x1a\x04date*\x00B\x00j\x00r\x00\x80\x01\x00\x88\x01\x00\x90\x01\x00\xa2\x01\x00\x1a\x09OnFailure2\x00B\x00J\x00R\x00X\x00`\x00h\x00\x82\x01\x00\x8a\x01\x00\x9a\x01\x00\xc2\x01\x00\x1a\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"CronJob","apiVersion":"batch/v1","metadata":{"name":"cj1","creationTimestamp":null},"spec":{"schedule":"@hourly","jobTemplate":{"metadata":{"name":"cj1","creationTimestamp":null},"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"cj1","image":"busybox","command":["date"],"resources":{}}],"restartPolicy":"OnFailure"}}}}},"status":{}}"#),
    ),
    (
        "csr_approve",
        "certificate approve csr1",
        b"k8s\x00\x0a3\x0a\x16certificates.k8s.io/v1\x12\x19CertificateSigningRequest\x12\xe4\x01\x0a\x1f\x0a\x04csr1\x12\x00\x1a\x00\"\x00*\x02u32\x0178\x00B\x08\x08\xa5\xeb\xdc\xca\x06\x10\x00\x12Z\x0a\x04----\x12\x05alice\x1a\x00\"\x14system:authenticated*\x0bclient auth:#kubernetes.io/kube-apiserver-client@\x90\x1c\x1ae\x0ac\x0a\x08Approved\x12\x0eKubectlApprove\x1a5This CSR was approved by kubectl certificate approve.\"\x08\x08\xc4\xf5\xa2\xd8\x06\x10\x00*\x002\x04True\x1a\x00\"\x00",
        None,
    ),
    (
        "deployment",
        "create deployment web --image=nginx:1.27 --replicas=0 --port=8080",
        b"k8s\x00\x0a\x15\x0a\x07apps/v1\x12\x0aDeployment\x12\xbe\x01\x0a\x1f\x0a\x03web\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00Z\x0a\x0a\x03app\x12\x03web\x12\x8c\x01\x08\x00\x12\x0c\x0a\x0a\x0a\x03app\x12\x03web\x1ar\x0a\x1c\x0a\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00Z\x0a\x0a\x03app\x12\x03web\x12R\x124\x0a\x05nginx\x12\x0anginx:1.27*\x002\x0b\x0a\x00\x10\x00\x18\x90?\"\x00*\x00B\x00j\x00r\x00\x80\x01\x00\x88\x01\x00\x90\x01\x00\xa2\x01\x00\x1a\x002\x00B\x00J\x00R\x00X\x00`\x00h\x00\x82\x01\x00\x8a\x01\x00\x9a\x01\x00\xc2\x01\x00\"\x02\x0a\x00(\x008\x00\x1a\x0c\x08\x00\x10\x00\x18\x00 \x00(\x008\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},"spec":{"replicas":0,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27","ports":[{"containerPort":8080}],"resources":{}}]}},"strategy":{}},"status":{}}"#),
    ),
    (
        "deployment_cmd",
        "create deployment multi --image=busybox -- sleep 3600",
        b"k8s\x00\x0a\x15\x0a\x07apps/v1\x12\x0aDeployment\x12\xc5\x01\x0a#\x0a\x05multi\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00Z\x0c\x0a\x03app\x12\x05multi\x12\x8f\x01\x08\x01\x12\x0e\x0a\x0c\x0a\x03app\x12\x05multi\x1as\x0a\x1e\x0a\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00Z\x0c\x0a\x03app\x12\x05multi\x12Q\x123\x0a\x07busybox\x12\x07busybox\x1a\x05sleep\x1a\x043600*\x00B\x00j\x00r\x00\x80\x01\x00\x88\x01\x00\x90\x01\x00\xa2\x01\x00\x1a\x002\x00B\x00J\x00R\x00X\x00`\x00h\x00\x82\x01\x00\x8a\x01\x00\x9a\x01\x00\xc2\x01\x00\"\x02\x0a\x00(\x008\x00\x1a\x0c\x08\x00\x10\x00\x18\x00 \x00(\x008\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"multi","creationTimestamp":null,"labels":{"app":"multi"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"multi"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"multi"}},"spec":{"containers":[{"name":"busybox","image":"busybox","command":["sleep","3600"],"resources":{}}]}},"strategy":{}},"status":{}}"#),
    ),
    (
        "ingress",
        "create ingress ing1 --class=nginx --rule=foo.com/bar*=svc1:8080,tls=my-cert --annotation=a=b --default-backend=defsvc:http",
        b"k8s\x00\x0a\x1f\x0a\x14networking.k8s.io/v1\x12\x07Ingress\x12\x85\x01\x0a\x1c\x0a\x04ing1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00b\x06\x0a\x01a\x12\x01b\x12a\x0a\x14\"\x12\x0a\x06defsvc\x12\x08\x0a\x04http\x10\x00\x12\x12\x0a\x07foo.com\x12\x07my-cert\x1a.\x0a\x07foo.com\x12#\x0a!\x0a\x1f\x0a\x04/bar\x12\x0f\"\x0d\x0a\x04svc1\x12\x05\x0a\x00\x10\x90?\x1a\x06Prefix\"\x05nginx\x1a\x02\x0a\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"ing1","creationTimestamp":null,"annotations":{"a":"b"}},"spec":{"ingressClassName":"nginx","defaultBackend":{"service":{"name":"defsvc","port":{"name":"http"}}},"tls":[{"hosts":["foo.com"],"secretName":"my-cert"}],"rules":[{"host":"foo.com","http":{"paths":[{"path":"/bar","pathType":"Prefix","backend":{"service":{"name":"svc1","port":{"number":8080}}}}]}}]},"status":{"loadBalancer":{}}}"#),
    ),
    (
        "job",
        "create job j1 --image=busybox -- echo hi",
        b"k8s\x00\x0a\x0f\x0a\x08batch/v1\x12\x03Job\x12\x84\x01\x0a\x12\x0a\x02j1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12d2b\x0a\x10\x0a\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12N\x12+\x0a\x02j1\x12\x07busybox\x1a\x04echo\x1a\x02hi*\x00B\x00j\x00r\x00\x80\x01\x00\x88\x01\x00\x90\x01\x00\xa2\x01\x00\x1a\x05Never2\x00B\x00J\x00R\x00X\x00`\x00h\x00\x82\x01\x00\x8a\x01\x00\x9a\x01\x00\xc2\x01\x00\x1a\x08 \x00(\x000\x00:\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j1","creationTimestamp":null},"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"j1","image":"busybox","command":["echo","hi"],"resources":{}}],"restartPolicy":"Never"}}},"status":{}}"#),
    ),
    (
        "job_from",
        "create job j2 --from=cronjob/cj1",
        b"k8s\x00\x0a\x0f\x0a\x08batch/v1\x12\x03Job\x12\xca\x01\x0a_\x0a\x02j2\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00b+\x0a!cronjob.kubernetes.io/instantiate\x12\x06manualj\x1e\x0a\x07CronJob\x1a\x03cj1\"\x02u2*\x08batch/v10\x01\x12]2[\x0a\x10\x0a\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12G\x12 \x0a\x01c\x12\x07busybox*\x00B\x00j\x00r\x00\x80\x01\x00\x88\x01\x00\x90\x01\x00\xa2\x01\x00\x1a\x09OnFailure2\x00B\x00J\x00R\x00X\x00`\x00h\x00\x82\x01\x00\x8a\x01\x00\x9a\x01\x00\xc2\x01\x00\x1a\x08 \x00(\x000\x00:\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j2","creationTimestamp":null,"annotations":{"cronjob.kubernetes.io/instantiate":"manual"},"ownerReferences":[{"apiVersion":"batch/v1","kind":"CronJob","name":"cj1","uid":"u2","controller":true}]},"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"c","image":"busybox","resources":{}}],"restartPolicy":"OnFailure"}}},"status":{}}"#),
    ),
    (
        "namespace",
        "create namespace demo",
        b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x1c\x0a\x14\x0a\x04demo\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x00\x1a\x02\x0a\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"demo","creationTimestamp":null},"spec":{},"status":{}}"#),
    ),
    (
        "pdb",
        "create pdb pdb1 --selector=app=web --max-unavailable=50%",
        b"k8s\x00\x0a \x0a\x09policy/v1\x12\x13PodDisruptionBudget\x12=\x0a\x14\x0a\x04pdb1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x19\x12\x0c\x0a\x0a\x0a\x03app\x12\x03web\x1a\x09\x08\x01\x10\x00\x1a\x0350%\x1a\x0a\x08\x00\x18\x00 \x00(\x000\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{"name":"pdb1","creationTimestamp":null},"spec":{"selector":{"matchLabels":{"app":"web"}},"maxUnavailable":"50%"},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}"#),
    ),
    (
        "pdb_min0",
        "create pdb pdb2 --selector=app=web --min-available=0",
        b"k8s\x00\x0a \x0a\x09policy/v1\x12\x13PodDisruptionBudget\x12:\x0a\x14\x0a\x04pdb2\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x16\x0a\x06\x08\x00\x10\x00\x1a\x00\x12\x0c\x0a\x0a\x0a\x03app\x12\x03web\x1a\x0a\x08\x00\x18\x00 \x00(\x000\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{"name":"pdb2","creationTimestamp":null},"spec":{"minAvailable":0,"selector":{"matchLabels":{"app":"web"}}},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}"#),
    ),
    (
        "priorityclass",
        "create priorityclass pc1 --value=1000 --description=hi --preemption-policy=Never --global-default=true",
        b"k8s\x00\x0a%\x0a\x14scheduling.k8s.io/v1\x12\x0dPriorityClass\x12%\x0a\x13\x0a\x03pc1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x10\xe8\x07\x18\x01\"\x02hi*\x05Never\x1a\x00\"\x00",
        Some(r#"{"kind":"PriorityClass","apiVersion":"scheduling.k8s.io/v1","metadata":{"name":"pc1","creationTimestamp":null},"value":1000,"globalDefault":true,"description":"hi","preemptionPolicy":"Never"}"#),
    ),
    (
        "priorityclass0",
        "create priorityclass pc0 --value=0",
        b"k8s\x00\x0a%\x0a\x14scheduling.k8s.io/v1\x12\x0dPriorityClass\x121\x0a\x13\x0a\x03pc0\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x10\x00\x18\x00\"\x00*\x14PreemptLowerPriority\x1a\x00\"\x00",
        Some(r#"{"kind":"PriorityClass","apiVersion":"scheduling.k8s.io/v1","metadata":{"name":"pc0","creationTimestamp":null},"value":0,"preemptionPolicy":"PreemptLowerPriority"}"#),
    ),
    (
        "quota",
        "create quota q1 --hard=cpu=1,memory=1Gi,pods=10,requests.storage=5Gi --scopes=NotTerminating",
        b"k8s\x00\x0a\x13\x0a\x02v1\x12\x0dResourceQuota\x12n\x0a\x12\x0a\x02q1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12V\x0a\x0a\x0a\x03cpu\x12\x03\x0a\x011\x0a\x0f\x0a\x06memory\x12\x05\x0a\x031Gi\x0a\x0c\x0a\x04pods\x12\x04\x0a\x0210\x0a\x19\x0a\x10requests.storage\x12\x05\x0a\x035Gi\x12\x0eNotTerminating\x1a\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"ResourceQuota","apiVersion":"v1","metadata":{"name":"q1","creationTimestamp":null},"spec":{"hard":{"cpu":"1","memory":"1Gi","pods":"10","requests.storage":"5Gi"},"scopes":["NotTerminating"]},"status":{}}"#),
    ),
    (
        "role",
        "create role r1 --verb=get,list --resource=pods,deployments.apps --resource-name=x",
        b"k8s\x00\x0a$\x0a\x1crbac.authorization.k8s.io/v1\x12\x04Role\x12O\x0a\x12\x0a\x02r1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x16\x0a\x03get\x0a\x04list\x12\x00\x1a\x04pods\"\x01x\x12!\x0a\x03get\x0a\x04list\x12\x04apps\x1a\x0bdeployments\"\x01x\x1a\x00\"\x00",
        Some(r#"{"kind":"Role","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"r1","creationTimestamp":null},"rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"],"resourceNames":["x"]},{"verbs":["get","list"],"apiGroups":["apps"],"resources":["deployments"],"resourceNames":["x"]}]}"#),
    ),
    (
        "rolebinding",
        "create rolebinding rb1 --role=r1 --user=alice --serviceaccount=default:sa1 --group=devs",
        b"k8s\x00\x0a+\x0a\x1crbac.authorization.k8s.io/v1\x12\x0bRoleBinding\x12\xb6\x01\x0a\x13\x0a\x03rb1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12*\x0a\x04User\x12\x19rbac.authorization.k8s.io\x1a\x05alice\"\x00\x12*\x0a\x05Group\x12\x19rbac.authorization.k8s.io\x1a\x04devs\"\x00\x12 \x0a\x0eServiceAccount\x12\x00\x1a\x03sa1\"\x07default\x1a%\x0a\x19rbac.authorization.k8s.io\x12\x04Role\x1a\x02r1\x1a\x00\"\x00",
        Some(r#"{"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"rb1","creationTimestamp":null},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"},{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"devs"},{"kind":"ServiceAccount","name":"sa1","namespace":"default"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r1"}}"#),
    ),
    (
        "secret",
        "create secret generic s1 --from-literal=user=admin --from-literal=pass=s3cr3t --type=Opaque",
        b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12;\x0a\x12\x0a\x02s1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x0e\x0a\x04pass\x12\x06s3cr3t\x12\x0d\x0a\x04user\x12\x05admin\x1a\x06Opaque\x1a\x00\"\x00",
        Some(r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s1","creationTimestamp":null},"data":{"pass":"czNjcjN0","user":"YWRtaW4="},"type":"Opaque"}"#),
    ),
    (
        "secret_docker",
        "create secret docker-registry reg --docker-server=r.example --docker-username=u --docker-password=p",
        b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x91\x01\x0a\x13\x0a\x03reg\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12Z\x0a\x11.dockerconfigjson\x12E{\"auths\":{\"r.example\":{\"username\":\"u\",\"password\":\"p\",\"auth\":\"dTpw\"}}}\x1a\x1ekubernetes.io/dockerconfigjson\x1a\x00\"\x00",
        Some(r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"reg","creationTimestamp":null},"data":{".dockerconfigjson":"eyJhdXRocyI6eyJyLmV4YW1wbGUiOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX19"},"type":"kubernetes.io/dockerconfigjson"}"#),
    ),
    (
        "serviceaccount",
        "create serviceaccount sa1",
        b"k8s\x00\x0a\x14\x0a\x02v1\x12\x0eServiceAccount\x12\x15\x0a\x13\x0a\x03sa1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"sa1","creationTimestamp":null}}"#),
    ),
    (
        "svc_clusterip",
        "create service clusterip svc1 --tcp=80:8080 --tcp=443:https",
        b"k8s\x00\x0a\x0d\x0a\x02v1\x12\x07Service\x12\x90\x01\x0a!\x0a\x04svc1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00Z\x0b\x0a\x03app\x12\x04svc1\x12g\x0a\x1b\x0a\x0780-8080\x12\x03TCP\x18P\"\x07\x08\x00\x10\x90?\x1a\x00(\x00\x0a\"\x0a\x09443-https\x12\x03TCP\x18\xbb\x03\"\x0b\x08\x01\x10\x00\x1a\x05https(\x00\x12\x0b\x0a\x03app\x12\x04svc1\x1a\x00\"\x09ClusterIP:\x00B\x00R\x00Z\x00`\x00h\x00\x1a\x02\x0a\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"svc1","creationTimestamp":null,"labels":{"app":"svc1"}},"spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080},{"name":"443-https","protocol":"TCP","port":443,"targetPort":"https"}],"selector":{"app":"svc1"},"type":"ClusterIP"},"status":{"loadBalancer":{}}}"#),
    ),
    (
        "svc_ext",
        "create service externalname ext1 --external-name=example.com",
        b"k8s\x00\x0a\x0d\x0a\x02v1\x12\x07Service\x12]\x0a!\x0a\x04ext1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00Z\x0b\x0a\x03app\x12\x04ext1\x124\x12\x0b\x0a\x03app\x12\x04ext1\x1a\x00\"\x0cExternalName:\x00B\x00R\x0bexample.comZ\x00`\x00h\x00\x1a\x02\x0a\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"ext1","creationTimestamp":null,"labels":{"app":"ext1"}},"spec":{"selector":{"app":"ext1"},"type":"ExternalName","externalName":"example.com"},"status":{"loadBalancer":{}}}"#),
    ),
    (
        "svc_headless",
        "create service clusterip hl1 --clusterip=None",
        b"k8s\x00\x0a\x0d\x0a\x02v1\x12\x07Service\x12P\x0a\x1f\x0a\x03hl1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00Z\x0a\x0a\x03app\x12\x03hl1\x12)\x12\x0a\x0a\x03app\x12\x03hl1\x1a\x04None\"\x09ClusterIP:\x00B\x00R\x00Z\x00`\x00h\x00\x1a\x02\x0a\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"hl1","creationTimestamp":null,"labels":{"app":"hl1"}},"spec":{"selector":{"app":"hl1"},"clusterIP":"None","type":"ClusterIP"},"status":{"loadBalancer":{}}}"#),
    ),
    (
        "svc_lb",
        "create service loadbalancer lb1 --tcp=80:8080",
        b"k8s\x00\x0a\x0d\x0a\x02v1\x12\x07Service\x12l\x0a\x1f\x0a\x03lb1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00Z\x0a\x0a\x03app\x12\x03lb1\x12E\x0a\x1b\x0a\x0780-8080\x12\x03TCP\x18P\"\x07\x08\x00\x10\x90?\x1a\x00(\x00\x12\x0a\x0a\x03app\x12\x03lb1\x1a\x00\"\x0cLoadBalancer:\x00B\x00R\x00Z\x00`\x00h\x00\x1a\x02\x0a\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"lb1","creationTimestamp":null,"labels":{"app":"lb1"}},"spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080}],"selector":{"app":"lb1"},"type":"LoadBalancer"},"status":{"loadBalancer":{}}}"#),
    ),
    (
        "svc_nodeport",
        "create service nodeport np1 --tcp=80:8080 --node-port=30080",
        b"k8s\x00\x0a\x0d\x0a\x02v1\x12\x07Service\x12j\x0a\x1f\x0a\x03np1\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00Z\x0a\x0a\x03app\x12\x03np1\x12C\x0a\x1d\x0a\x0780-8080\x12\x03TCP\x18P\"\x07\x08\x00\x10\x90?\x1a\x00(\x80\xeb\x01\x12\x0a\x0a\x03app\x12\x03np1\x1a\x00\"\x08NodePort:\x00B\x00R\x00Z\x00`\x00h\x00\x1a\x02\x0a\x00\x1a\x00\"\x00",
        Some(r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"np1","creationTimestamp":null,"labels":{"app":"np1"}},"spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080,"nodePort":30080}],"selector":{"app":"np1"},"type":"NodePort"},"status":{"loadBalancer":{}}}"#),
    ),
    (
        "token",
        "create token sa1 --duration=10m --audience=a",
        b"k8s\x00\x0a(\x0a\x18authentication.k8s.io/v1\x12\x0cTokenRequest\x12 \x0a\x10\x0a\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x06\x0a\x01a \xd8\x04\x1a\x04\x0a\x00\x12\x00\x1a\x00\"\x00",
        None,
    ),
];
