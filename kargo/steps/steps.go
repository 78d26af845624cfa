// Package steps registers the gha-dispatch-workflow and gha-wait-for-workflow
// promotion steps in Kargo's default step runner registry. Compile them into
// a Kargo controller with a blank import in its main package:
//
//	import _ "github.com/kargo-gha/kargo-gha/kargo/steps"
//
// The steps themselves live in github.com/kargo-gha/kargo-gha/pkg/step;
// this package only converts between Kargo's types and those, and supplies
// Kargo's credentials database and logger.
package steps

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	kargoapi "github.com/akuity/kargo/api/v1alpha1"
	kargocreds "github.com/akuity/kargo/pkg/credentials"
	"github.com/akuity/kargo/pkg/logging"
	"github.com/akuity/kargo/pkg/promotion"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/pkg/step"
)

const (
	// dispatchErrorThreshold: a transient dispatch error means nothing was
	// dispatched (the step keeps everything after a possible dispatch
	// Running or final), so a few retries are safe.
	dispatchErrorThreshold = 3
	// waitErrorThreshold: the wait step turns GitHub's failures into
	// Running within its outage budget; an error that still reaches Kargo
	// is one a retry is unlikely to fix soon.
	waitErrorThreshold = 3
)

func init() {
	r := step.NewRunner()
	// The controller's metrics endpoint serves controller-runtime's registry.
	r.Observe(NewMetrics(metrics.Registry))
	Register(promotion.DefaultStepRunnerRegistry, r)
}

// Register registers both steps in registry, served by runner. Kargo calls
// a step's factory for every execution, so runner (its token cache, HTTP
// connections and dispatch memory) is what outlives them.
func Register(registry interface {
	MustRegister(promotion.StepRunnerRegistration)
}, runner *step.Runner) {
	caps := []promotion.StepRunnerCapability{
		promotion.StepCapabilityAccessCredentials,
		// Only for the v1.8 format's credentials.secretName.
		promotion.StepCapabilityAccessControlPlane,
	}
	registry.MustRegister(promotion.StepRunnerRegistration{
		Name: config.DispatchStepName,
		Value: func(c promotion.StepRunnerCapabilities) promotion.StepRunner {
			return &stepRunner{caps: c, run: runner.Dispatch}
		},
		Metadata: promotion.StepRunnerMetadata{DefaultErrorThreshold: dispatchErrorThreshold, RequiredCapabilities: caps},
	})
	registry.MustRegister(promotion.StepRunnerRegistration{
		Name: config.WaitStepName,
		Value: func(c promotion.StepRunnerCapabilities) promotion.StepRunner {
			return &stepRunner{caps: c, run: runner.Wait}
		},
		// No default timeout: a run may wait days for an environment's
		// approval; users bound it with the step's retry.timeout.
		Metadata: promotion.StepRunnerMetadata{DefaultErrorThreshold: waitErrorThreshold, RequiredCapabilities: caps},
	})
}

// stepRunner adapts one step function to Kargo's StepRunner.
type stepRunner struct {
	caps promotion.StepRunnerCapabilities
	run  func(context.Context, *step.Context) (step.Result, error)
}

// Run implements promotion.StepRunner.
func (s *stepRunner) Run(ctx context.Context, sc *promotion.StepContext) (promotion.StepResult, error) {
	logger := logging.LoggerFromContext(ctx)
	res, err := s.run(ctx, &step.Context{
		Project:           sc.Project,
		Promotion:         sc.Promotion,
		Alias:             sc.Alias,
		Config:            map[string]any(sc.Config),
		SharedState:       map[string]any(sc.SharedState),
		Credentials:       s.credentials(sc.Project),
		LegacyCredentials: s.legacyCredentials(sc.Project),
		SavesState:        true,
		// Kargo's logger, with the promotion's coordinates on every line.
		Log: slog.New(logr.ToSlogHandler(logger.Logr())).With("project", sc.Project, "promotion", sc.Promotion, "step", sc.Alias),
	})
	out := promotion.StepResult{
		Status:     kargoapi.PromotionStepStatus(res.Status),
		Message:    res.Message,
		Output:     res.Output,
		RetryAfter: res.RetryAfter,
	}
	if err != nil && failure.IsFinal(err) {
		return out, &promotion.TerminalError{Err: err}
	}
	return out, err
}

// credentials reads Kargo's credentials database. For a GitHub App, Kargo
// has already minted an installation token, which arrives as the password.
func (s *stepRunner) credentials(project string) func(context.Context, string) (*credentials.Credentials, error) {
	if s.caps.CredsDB == nil {
		return nil
	}
	return func(ctx context.Context, repoURL string) (*credentials.Credentials, error) {
		c, err := s.caps.CredsDB.Get(ctx, project, kargocreds.TypeGit, repoURL)
		if err != nil || c == nil {
			return nil, err
		}
		if c.Password == "" {
			return nil, failure.Final(fmt.Errorf("the Git credentials for %s in project %s have no password: for a personal access token set username and password (the token); for a GitHub App set githubAppClientID (or githubAppID), githubAppInstallationID and githubAppPrivateKey", repoURL, project))
		}
		return &credentials.Credentials{Token: c.Password, Source: "Kargo Git credentials for " + repoURL}, nil
	}
}

// legacyCredentials reads the v1.8 format's Secret in the project
// namespace (accessToken, baseURL, uploadURL).
func (s *stepRunner) legacyCredentials(project string) func(context.Context, string) (*credentials.Credentials, error) {
	if s.caps.KargoClient == nil {
		return nil
	}
	return func(ctx context.Context, name string) (*credentials.Credentials, error) {
		var sec corev1.Secret
		err := s.caps.KargoClient.Get(ctx, client.ObjectKey{Namespace: project, Name: name}, &sec)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("getting Secret: %w", err)
		}
		data := make(map[string]string, len(sec.Data)+len(sec.StringData))
		for k, v := range sec.Data {
			data[k] = string(v)
		}
		for k, v := range sec.StringData {
			data[k] = v
		}
		c, err := credentials.FromLegacySecret([]credentials.Secret{{Name: name, Namespace: project, Data: data}}, project, name)
		if err != nil {
			return nil, failure.Final(err)
		}
		return &c, nil
	}
}
